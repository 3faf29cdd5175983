"""The per-fold training task, and the progress that training tasks report."""

import os
import socket

import numpy as np
from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from pydantic import BaseModel

from mnist_pipeline.arrays import ArrayHandle
from mnist_pipeline.config import TrainingConfig
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.orchestration.caching import CACHED_RESULTS
from mnist_pipeline.preprocessing import ScalingStats
from mnist_pipeline.tasks.data import ScaledImages


class FoldResult(BaseModel):
    """One fold's validation accuracy, per-epoch history, training seconds, where it trained and its scaling."""

    fold: int
    accuracy: float
    history: dict[str, list[float]]
    seconds: float
    worker: str
    scaling: ScalingStats


def worker_name() -> str:
    """host:pid of the process a training ran in."""
    return f"{socket.gethostname()}:{os.getpid()}"


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
        worker=worker_name(),
        scaling=images.stats,
    )


class FoldsFailed(PipelineError):
    """Some folds failed; the ones that finished are cached for the next run."""


def completed(futures, noun: str, error: type[PipelineError]) -> list:
    """Every mapped training's result once all have ended, or `error` naming each failed one (`noun` 1, 2, ...)
    and why."""
    futures.wait()
    failures = []
    for number, future in enumerate(futures, start=1):
        if not future.state.is_completed():
            failures.append(f"{noun} {number} failed: {future.state.result(raise_on_failure=False)}")
    if failures:
        finished = len(futures) - len(failures)
        raise error(
            "; ".join(failures) + f". {finished} of {len(futures)} {noun}s finished and are cached: "
            "run again with the same parameters to train only the others"
        )
    return [future.result() for future in futures]


def completed_folds(futures) -> list[FoldResult]:
    """Every fold's result once all have ended, or FoldsFailed naming each failed fold and why."""
    return completed(futures, "fold", FoldsFailed)
