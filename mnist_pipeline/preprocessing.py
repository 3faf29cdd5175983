"""Arrays in, arrays out: the study's reshaping, one-hot labels and pixel scaling."""

from typing import Literal, NamedTuple

import numpy as np

from mnist_pipeline.errors import PipelineError

NUM_CLASSES = 10
Scaling = Literal["unit", "center", "standardize"]
SCALINGS: tuple[str, ...] = Scaling.__args__


class ScalingStats(NamedTuple):
    """Pixels become `(pixel / 255 - mean) / std`; `unit` is mean 0, std 1."""

    mode: str
    mean: float
    std: float


def add_channel_axis(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) -> (N, 28, 28, 1), a view."""
    if images.ndim != 3:
        raise ValueError(f"images must have shape (N, height, width), got shape {images.shape}")
    return images[..., np.newaxis]


def one_hot(labels: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must be in [0, {num_classes}), got values {labels.min()}..{labels.max()}")
    return np.eye(num_classes, dtype=np.float32)[labels]


def fit_scaling(images: np.ndarray, mode: str, index: np.ndarray | None = None) -> ScalingStats:
    """Statistics of `images[index]` (all images when `index` is None) for `mode`.

    Centering and standardization work on pixels already divided by 255, so that the study's
    learning rate suits every mode; pass the training rows only, so nothing leaks from validation.
    """
    if mode not in SCALINGS:
        raise PipelineError(f"scaling must be one of {', '.join(SCALINGS)}, got scaling={mode!r}")
    if mode == "unit":
        return ScalingStats(mode, 0.0, 1.0)
    pixels = images if index is None else images[index]
    mean = float(pixels.mean(dtype=np.float64)) / 255
    std = float(pixels.std(dtype=np.float64)) / 255 if mode == "standardize" else 1.0
    if std == 0:
        raise PipelineError("scaling='standardize' needs images whose pixels vary; these are all the same value")
    return ScalingStats(mode, mean, std)


def apply_scaling(images: np.ndarray, stats: ScalingStats) -> np.ndarray:
    scaled = images.astype(np.float32)
    scaled /= 255
    if stats.mean:
        scaled -= np.float32(stats.mean)
    if stats.std != 1.0:
        scaled /= np.float32(stats.std)
    return scaled


def model_input(digits: np.ndarray, stats: ScalingStats) -> np.ndarray:
    """Prepared uint8 digits (N, 28, 28) as a model takes them: (N, 28, 28, 1), scaled as in training."""
    return apply_scaling(add_channel_axis(digits), stats)
