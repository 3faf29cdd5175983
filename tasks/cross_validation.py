"""The folds' results summed up as the study reports them."""

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from mnist_pipeline import reports
from mnist_pipeline.tasks.training import FoldResult


class CrossValidationSummary(BaseModel):
    output_dir: str
    parameters: dict[str, Any]
    folds: list[FoldResult]
    accuracies: list[float]
    mean: float
    std: float
    n: int
    training_seconds: float  # the folds' own, summed: also for folds a rerun found cached


@task(cache_policy=NO_CACHE)
def summarize_folds(results: list[FoldResult], parameters: dict[str, Any], output_dir: str) -> CrossValidationSummary:
    """The folds' accuracies in fold order, their mean, std and count, and the seconds they trained."""
    results = sorted(results, key=lambda result: result.fold)
    accuracies = [result.accuracy for result in results]
    return CrossValidationSummary(
        output_dir=output_dir,
        parameters=parameters,
        folds=results,
        accuracies=accuracies,
        training_seconds=sum(result.seconds for result in results),
        **reports.summarize(accuracies),
    )
