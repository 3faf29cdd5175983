"""The per-fold training task, and the task runners that run folds in parallel."""

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import numpy as np
from prefect import get_client, get_run_logger, task
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner
from pydantic import BaseModel

from mnist_pipeline import settings
from mnist_pipeline.arrays import ArrayHandle
from mnist_pipeline.config import TrainingConfig
from mnist_pipeline.preprocessing import ScalingStats
from tasks.caching import CACHED_RESULTS
from tasks.data import ScaledImages

Runner = Literal["process", "thread"]


class FoldResult(BaseModel):
    fold: int
    accuracy: float
    history: dict[str, list[float]]
    seconds: float
    worker: str
    scaling: ScalingStats


def log_epoch(label: str):
    """A training progress callback that writes each epoch's metrics to the run's log."""
    logger = get_run_logger()

    def report(epoch: int, epochs: int, logs: dict[str, float]) -> None:
        logger.info("%s epoch %d/%d: %s", label, epoch, epochs, " ".join(f"{name}={value:.4f}" for name, value in logs.items()))

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
        config, x[train_index], y[train_index], x[validation_index], y[validation_index],
        seed=config.seed + fold, report=log_epoch(f"fold {fold}"),
    )
    return FoldResult(
        fold=fold,
        accuracy=history["val_accuracy"][-1],
        history=history,
        seconds=seconds,
        worker=f"{socket.gethostname()}:{os.getpid()}",
        scaling=images.stats,
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


def configure_worker(intra_op_threads: int) -> None:
    """Process-pool initializer: cap TensorFlow's threads before it runs its first operation."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)


@contextmanager
def fold_task_runner(runner: Runner, workers: int) -> Iterator[TaskRunner]:
    """A started runner for folds: processes (the default) share the cores among TensorFlow's threads.

    Worker processes report to the flow's own API: without PREFECT_API_URL each would otherwise
    start a temporary server of its own.
    """
    if runner == "thread":
        task_runner = ThreadPoolTaskRunner(max_workers=workers)
    else:
        threads = max(1, settings.available_cores() // workers)
        task_runner = ProcessPoolTaskRunner(max_workers=workers, initializer=configure_worker, initargs=(threads,))
    with get_client(sync_client=True) as client, temporary_settings({PREFECT_API_URL: str(client.api_url)}):
        with task_runner:
            yield task_runner
