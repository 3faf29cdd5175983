"""Training one model on arrays, with per-epoch progress reported to a callback."""

import math
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from mnist_pipeline import files
from mnist_pipeline.config import COSINE_DECAY, TrainingConfig
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.models import build_model, compile_model

# Evaluation only: the same accuracy and loss as at the training batch size (to 1e-6), with a fraction of
# the steps' overhead: 12,000 held-out images in 0.6-0.7 s of CPU instead of 1.5-1.6 s (baseline, one thread).
VALIDATION_BATCH_SIZE = 1024


class EpochReporter(keras.callbacks.Callback):
    """Calls `report(epoch, epochs, logs)` after each epoch (epochs counted from 1)."""

    def __init__(self, report: Callable[[int, int, dict[str, float]], None]):
        super().__init__()
        self.report = report

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.report(epoch + 1, self.params["epochs"], dict(logs or {}))


class TrainingDiverged(PipelineError):
    """The loss stopped being a finite number."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Fail once the loss is NaN or infinite, saying by when: Keras reports it after each run of
    `steps_per_execution` batches (or the epoch's end)."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            batch_count = min(batch + 1, self.params.get("steps") or batch + 1)  # Keras counts whole runs of batches
            raise TrainingDiverged(
                f"the loss became {loss} in epoch {self.epoch}, by batch {batch_count}; lower the learning rate"
            )


def train_model(
    config: TrainingConfig,
    x_train: np.ndarray,
    y_train: np.ndarray,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    seed: int | None = None,
    report: Callable[[int, int, dict[str, float]], None] | None = None,
) -> tuple[keras.Model, dict[str, list[float]], float]:
    """Train a fresh model (validating after every epoch if given data): (model, history, seconds)."""
    keras.utils.set_random_seed(config.seed if seed is None else seed)
    steps = config.epochs * math.ceil(len(x_train) / config.batch_size)
    decay_steps = steps if config.model in COSINE_DECAY else None
    model = compile_model(build_model(config.model), config.learning_rate, decay_steps=decay_steps)
    started = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        epochs=config.epochs,
        batch_size=config.batch_size,
        validation_data=validation_data,
        validation_batch_size=VALIDATION_BATCH_SIZE,
        callbacks=[StopOnNonFiniteLoss()] + ([EpochReporter(report)] if report else []),
        verbose=0,
    )
    seconds = time.perf_counter() - started
    return model, {name: [float(v) for v in values] for name, values in history.history.items()}, seconds


def fit_and_validate(
    config: TrainingConfig,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    seed: int | None = None,
    report: Callable[[int, int, dict[str, float]], None] | None = None,
) -> tuple[dict[str, list[float]], float]:
    """Train a fresh model, validating after every epoch: (history, seconds)."""
    _, history, seconds = train_model(config, x_train, y_train, (x_val, y_val), seed, report)
    return history, seconds


def save_model(model: keras.Model, path: Path) -> Path:
    """`model` saved at `path` in the format its suffix names (.keras, .h5), whole or not at all."""
    with files.replacing(path) as temporary:
        model.save(temporary)
    return path
