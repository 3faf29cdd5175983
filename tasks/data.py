"""Data tasks: download MNIST, take a subset, reshape, one-hot encode and scale it; each result a handle to
cached `.npy` files."""

from typing import Literal

import numpy as np
from prefect import get_run_logger, task
from prefect.tasks import exponential_backoff
from pydantic import BaseModel

from mnist_pipeline import mnist, preprocessing, settings
from mnist_pipeline.arrays import ArrayHandle, save_array
from mnist_pipeline.orchestration.caching import CACHED_RESULTS, array_cache_key
from mnist_pipeline.preprocessing import ScalingStats
from mnist_pipeline.splits import stratified_subset


class MnistArrays(BaseModel):
    """The raw uint8 arrays: images (N, 28, 28), labels (N,)."""

    dataset: str
    train_images: ArrayHandle
    train_labels: ArrayHandle
    test_images: ArrayHandle
    test_labels: ArrayHandle

    def split(self, name: Literal["train", "test"]) -> "Digits":
        return Digits(images=getattr(self, f"{name}_images"), labels=getattr(self, f"{name}_labels"))


class Digits(BaseModel):
    """uint8 images (N, 28, 28) and their digits (N,)."""

    images: ArrayHandle
    labels: ArrayHandle


class LabeledImages(BaseModel):
    """Model-ready layout: uint8 images (N, 28, 28, 1) and float32 one-hot labels (N, 10)."""

    images: ArrayHandle
    labels: ArrayHandle


class ScaledImages(BaseModel):
    """float32 images scaled with `stats`."""

    images: ArrayHandle
    stats: ScalingStats


def is_network_error(task, task_run, state) -> bool:
    """Retry only what a retry can fix: a network failing for a moment, not an offline machine or a bad file."""
    return isinstance(state.result(raise_on_failure=False), mnist.DownloadInterrupted)


def download_cache_key(context, parameters) -> str:
    """Keyed by where the data comes from: a changed MNIST_DATA_DIR is read again."""
    source = settings.data_dir(parameters["data_dir"]) or mnist.KERAS_URL
    return array_cache_key(context, {"source": str(source)})


@task(
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=4),
    retry_condition_fn=is_network_error,
    **{**CACHED_RESULTS, "cache_key_fn": download_cache_key},
)
def download_mnist(data_dir: str | None = None) -> MnistArrays:
    """MNIST from `data_dir` or $MNIST_DATA_DIR (IDX files or mnist.npz), else from the Keras URL."""
    source, data = mnist.load(settings.data_dir(data_dir), settings.download_dir())
    dataset = mnist.identify(data, source)
    get_run_logger().info(
        "Read %s from %s: %d train, %d test images", dataset, source, len(data.train_images), len(data.test_images)
    )
    cache = settings.cache_url()
    return MnistArrays(dataset=dataset, **{name: save_array(array, cache) for name, array in data._asdict().items()})


@task(**CACHED_RESULTS)
def take_stratified_subset(digits: Digits, limit: int, seed: int = 1) -> Digits:
    """`limit` rows drawn at random with the class proportions of all of them."""
    index = stratified_subset(digits.labels.open(), limit, seed)
    cache = settings.cache_url()
    return Digits(
        images=save_array(digits.images.open()[index], cache), labels=save_array(digits.labels.open()[index], cache)
    )


@task(**CACHED_RESULTS)
def reshape_images(images: ArrayHandle) -> ArrayHandle:
    """(N, 28, 28) -> (N, 28, 28, 1), the layout the models take."""
    return save_array(preprocessing.add_channel_axis(images.open()), settings.cache_url())


@task(**CACHED_RESULTS)
def one_hot_labels(labels: ArrayHandle) -> ArrayHandle:
    """Digits (N,) -> one-hot float32 rows (N, 10), the targets of the cross-entropy loss."""
    return save_array(preprocessing.one_hot(labels.open()), settings.cache_url())


def prepare_split(
    raw: MnistArrays, split: Literal["train", "test"], limit: int | None = None, seed: int = 1
) -> LabeledImages:
    """Orders the tasks that turn a split of MNIST (or a stratified subset of it) into model-ready arrays."""
    digits = raw.split(split)
    if limit is not None:
        digits = take_stratified_subset(digits, limit, seed)
    return model_ready(digits)


def model_ready(digits: Digits) -> LabeledImages:
    return LabeledImages(images=reshape_images(digits.images), labels=one_hot_labels(digits.labels))


@task
def fit_scaling(images: ArrayHandle, scaling: str, fit_index: np.ndarray | None = None) -> ScalingStats:
    """Scaling statistics from the rows in `fit_index` only (the training split)."""
    return preprocessing.fit_scaling(images.open(), scaling, fit_index)


@task(**CACHED_RESULTS)
def normalize_images(images: ArrayHandle, stats: ScalingStats) -> ScaledImages:
    return ScaledImages(
        images=save_array(preprocessing.apply_scaling(images.open(), stats), settings.cache_url()), stats=stats
    )
