"""Training tasks: a fold of a cross-validation, and the final model on every training image."""

import os
import socket
from pathlib import Path
from typing import Any

import numpy as np
from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from mnist_pipeline import reports
from mnist_pipeline.arrays import ArrayHandle
from mnist_pipeline.config import TrainingConfig
from mnist_pipeline.preprocessing import ScalingStats
from mnist_pipeline.registry import MODEL_FILE
from mnist_pipeline.tasks.caching import CACHED_RESULTS
from mnist_pipeline.tasks.data import ScaledImages


class FoldResult(BaseModel):
    """One fold's validation accuracy, per-epoch history, training seconds, where it trained and its scaling."""

    fold: int
    accuracy: float
    history: dict[str, list[float]]
    seconds: float
    worker: str
    scaling: ScalingStats


class CrossValidationSummary(BaseModel):
    output_dir: str
    parameters: dict[str, Any]
    folds: list[FoldResult]
    accuracies: list[float]
    mean: float
    std: float
    n: int
    training_seconds: float  # the folds' own, summed: also for folds a rerun found cached


class TrainedModel(BaseModel):
    """A model trained on every training image, saved as `model_path` (and `h5_path` when asked)."""

    model_path: str
    h5_path: str | None
    history: dict[str, list[float]]
    seconds: float


def report_epochs(label: str, key: str):
    """A training callback: each epoch's metrics in the run's log, and a progress artifact `key` that follows
    the epochs, so that the UI shows how far a training has come while it runs."""
    logger = get_run_logger()
    progress = create_progress_artifact(0.0, key=key, description=f"{label}: starting")

    def report(epoch: int, epochs: int, logs: dict[str, float]) -> None:
        metrics = " ".join(f"{name}={value:.4f}" for name, value in logs.items())
        logger.info("%s epoch %d/%d: %s", label, epoch, epochs, metrics)
        update_progress_artifact(
            progress, 100 * epoch / epochs, description=f"{label}: epoch {epoch}/{epochs}, {metrics}"
        )

    return report


@task(task_run_name="train-fold-{fold}", **CACHED_RESULTS)
def train_fold(
    fold: int,
    images: ScaledImages,
    labels: ArrayHandle,
    train_index: np.ndarray,
    validation_index: np.ndarray,
    config: TrainingConfig,
) -> FoldResult:
    """Train a fresh model on the fold's training rows; its accuracy is on the held-out rows.

    The result is persisted as soon as the fold ends: a rerun with the same inputs (after a crash,
    say) finds it Cached and trains only the folds that did not finish.
    """
    from mnist_pipeline.training import fit_and_validate  # TensorFlow loads in the worker only

    x, y = images.images.open(), labels.open()
    history, seconds = fit_and_validate(
        config,
        x[train_index],
        y[train_index],
        x[validation_index],
        y[validation_index],
        seed=config.seed + fold,
        report=report_epochs(f"fold {fold}", key=f"training-progress-fold-{fold}"),
    )
    return FoldResult(
        fold=fold,
        accuracy=history["val_accuracy"][-1],
        history=history,
        seconds=seconds,
        worker=f"{socket.gethostname()}:{os.getpid()}",
        scaling=images.stats,
    )


@task(cache_policy=NO_CACHE)
def train_final_model(
    images: ScaledImages, labels: ArrayHandle, config: TrainingConfig, output_dir: str, h5: bool = False
) -> TrainedModel:
    """A fresh model trained on every training image, as the study's final step, saved into `output_dir`."""
    from mnist_pipeline.training import save_model, train_model  # TensorFlow loads where models train

    model, history, seconds = train_model(
        config, images.images.open(), labels.open(), report=report_epochs(config.model, key="training-progress-final")
    )
    output = Path(output_dir)
    h5_path = save_model(model, output / "final_model.h5") if h5 else None
    return TrainedModel(
        model_path=str(save_model(model, output / MODEL_FILE)),
        h5_path=h5_path and str(h5_path),
        history=history,
        seconds=seconds,
    )


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


class FoldsFailed(RuntimeError):
    """Some folds failed; the ones that finished are cached for the next run."""


def completed_folds(futures) -> list[FoldResult]:
    """Every fold's result once all have ended, or FoldsFailed naming each failed fold and why."""
    futures.wait()
    failures = []
    for fold, future in enumerate(futures, start=1):
        if not future.state.is_completed():
            failures.append(f"fold {fold} failed: {future.state.result(raise_on_failure=False)}")
    if failures:
        finished = len(futures) - len(failures)
        raise FoldsFailed(
            "; ".join(failures) + f". {finished} of {len(futures)} folds finished and are cached: "
            "run again with the same parameters to train only the others"
        )
    return [future.result() for future in futures]
