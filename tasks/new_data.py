"""The labeled-data store's examples for a run: read and split, validated, added to MNIST's training images."""

from collections import Counter

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from mnist_pipeline import data_checks, preprocessing, settings
from mnist_pipeline.arrays import save_array
from mnist_pipeline.data_checks import Finding
from mnist_pipeline.datastore import DataStore, image_sha256
from mnist_pipeline.tasks.caching import CACHED_RESULTS
from mnist_pipeline.tasks.data import Digits, LabeledImages, MnistArrays


class StoreExamples(BaseModel):
    """The store's accepted examples at one moment: `train` to learn from, `held_out` the users' digits."""

    digest: str
    train: Digits
    held_out: Digits
    conflicts: int

    def lineage(self) -> dict:
        """What a version records about the new data it was trained on."""
        return {
            "store_digest": self.digest,
            "new_examples": self.train.labels.shape[0],
            "new_examples_by_label": dict(sorted(Counter(map(str, self.train.labels.open().tolist())).items())),
            "held_out_examples": self.held_out.labels.shape[0],
        }


class DataValidation(BaseModel):
    findings: list[Finding]
    reason: str | None  # why the data blocks the run; None when it passes
    examples: int


def _digits(images: np.ndarray, labels: np.ndarray) -> Digits:
    cache = settings.cache_url()
    return Digits(images=save_array(images, cache), labels=save_array(labels, cache))


@task(cache_policy=NO_CACHE)
def read_store_examples() -> StoreExamples:
    """The store's examples without conflicts, split by digest into training and held-out ones."""
    store = DataStore(settings.data_store_location())
    summary = store.summary()
    images, labels = store.arrays()
    held_out = np.array([data_checks.is_held_out(image_sha256(image)) for image in images], bool)
    return StoreExamples(
        digest=summary["digest"],
        train=_digits(images[~held_out], labels[~held_out]),
        held_out=_digits(images[held_out], labels[held_out]),
        conflicts=len(summary["conflicts"]),
    )


@task(cache_policy=NO_CACHE)
def validate_data(examples: StoreExamples, raw: MnistArrays) -> DataValidation:
    """Every stored example (both shares) checked before any training: see `data_checks.validate_examples`."""
    images = np.concatenate([examples.train.images.open(), examples.held_out.images.open()])
    labels = np.concatenate([examples.train.labels.open(), examples.held_out.labels.open()])
    findings = data_checks.validate_examples(
        images,
        labels,
        examples.conflicts,
        data_checks.known_test_image_digests(raw.test_images.open()),
        raw.train_labels.open(),
    )
    return DataValidation(findings=findings, reason=data_checks.blocking_reason(findings), examples=len(labels))


@task(**CACHED_RESULTS)
def add_examples(train: LabeledImages, examples: Digits) -> LabeledImages:
    """MNIST's (model-ready) training images followed by the new examples in the same layout."""
    cache = settings.cache_url()
    images = np.concatenate([train.images.open(), preprocessing.add_channel_axis(examples.images.open())])
    labels = np.concatenate([train.labels.open(), preprocessing.one_hot(examples.labels.open())])
    return LabeledImages(images=save_array(images, cache), labels=save_array(labels, cache))
