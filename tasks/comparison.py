"""The comparison of cross-validated variants."""

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from mnist_pipeline.tasks.cross_validation import CrossValidationSummary


class ComparisonSummary(BaseModel):
    output_dir: str
    rows: list[dict]  # per variant: variant, mean, std, n, seconds, training_seconds, accuracies


@task(cache_policy=NO_CACHE)
def tabulate_variants(variants: dict[str, tuple[CrossValidationSummary, float]], output_dir: str) -> ComparisonSummary:
    """A row per variant: its fold accuracies, their mean, std and count, its wall-clock and training seconds."""
    return ComparisonSummary(
        output_dir=output_dir,
        rows=[
            {
                "variant": name,
                "mean": summary.mean,
                "std": summary.std,
                "n": summary.n,
                "seconds": round(seconds, 1),
                "training_seconds": round(summary.training_seconds, 1),
                "accuracies": summary.accuracies,
            }
            for name, (summary, seconds) in variants.items()
        ],
    )
