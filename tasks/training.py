"""The per-fold training task."""

import os
import socket

import numpy as np
from prefect import get_run_logger, task
from pydantic import BaseModel

from mnist_pipeline.arrays import ArrayHandle
from mnist_pipeline.preprocessing import ScalingStats
from mnist_pipeline.config import TrainingConfig
from tasks.data import ScaledImages


class FoldResult(BaseModel):
    fold: int
    accuracy: float
    history: dict[str, list[float]]
    seconds: float
    worker: str
    scaling: ScalingStats


@task(task_run_name="train-fold-{fold}")
def train_fold(
    fold: int,
    images: ScaledImages,
    labels: ArrayHandle,
    train_index: np.ndarray,
    validation_index: np.ndarray,
    config: TrainingConfig,
) -> FoldResult:
    """Train a fresh model on the fold's training rows; its accuracy is on the held-out rows."""
    from mnist_pipeline.training import fit_and_validate  # TensorFlow loads in the worker only

    logger = get_run_logger()
    x, y = images.images.open(), labels.open()

    def report(epoch: int, epochs: int, logs: dict[str, float]) -> None:
        logger.info(
            "fold %d epoch %d/%d: loss=%.4f accuracy=%.4f val_loss=%.4f val_accuracy=%.4f",
            fold, epoch, epochs, logs["loss"], logs["accuracy"], logs["val_loss"], logs["val_accuracy"],
        )

    history, seconds = fit_and_validate(
        config, x[train_index], y[train_index], x[validation_index], y[validation_index], seed=config.seed + fold, report=report
    )
    return FoldResult(
        fold=fold,
        accuracy=history["val_accuracy"][-1],
        history=history,
        seconds=seconds,
        worker=f"{socket.gethostname()}:{os.getpid()}",
        scaling=images.stats,
    )
