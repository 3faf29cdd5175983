"""The labeled-data store's examples for a run: read and split, validated, added to MNIST's training images."""

from collections import Counter

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from mnist_pipeline import data_checks, preprocessing, settings
from mnist_pipeline.arrays import save_array
from mnist_pipeline.client_share import ClientShares, cap_clients, max_client_share
from mnist_pipeline.data_checks import Finding
from mnist_pipeline.datastore import images_and_labels
from mnist_pipeline.orchestration import stores
from mnist_pipeline.orchestration.caching import CACHED_RESULTS
from mnist_pipeline.tasks.data import Digits, LabeledImages, MnistArrays


class StoreExamples(BaseModel):
    """The store's accepted examples at one moment: `train` to learn from, `held_out` the users' digits."""

    digest: str
    train: Digits
    held_out: Digits
    conflicts: int
    clients: dict[str, ClientShares] = {}  # "train", "held_out": who sent them, what the share cap left out

    def lineage(self) -> dict:
        """What a version records about the new data it was trained on."""
        return {
            "store_digest": self.digest,
            "new_examples": self.train.labels.shape[0],
            "new_examples_by_label": dict(sorted(Counter(map(str, self.train.labels.open().tolist())).items())),
            "held_out_examples": self.held_out.labels.shape[0],
            **({"max_client_share": self.clients["train"].max_share} if "train" in self.clients else {}),
            "left_out_by_client_share": sum(sum(part.left_out.values()) for part in self.clients.values()),
        }


class DataValidation(BaseModel):
    findings: list[Finding]
    reason: str | None  # why the data blocks the run; None when it passes
    examples: int
    clients: dict[str, ClientShares] = {}


def _digits(images: np.ndarray, labels: np.ndarray) -> Digits:
    cache = settings.cache_url()
    return Digits(images=save_array(images, cache), labels=save_array(labels, cache))


@task(cache_policy=NO_CACHE)
def read_store_examples() -> StoreExamples:
    """The store's examples without conflicts, split by digest into training and held-out ones, each part with no
    client over $MNIST_MAX_CLIENT_SHARE of it (the held-out part too: one client must not decide the users' verdict)."""
    share = max_client_share()
    store = stores.data_store()
    summary = store.summary()
    records = store.examples()
    parts = {
        part: cap_clients([r for r in records if data_checks.is_held_out(r["sha256"]) == (part == "held_out")], share)
        for part in ("train", "held_out")
    }
    return StoreExamples(
        digest=summary["digest"],
        train=_digits(*images_and_labels(parts["train"][0])),
        held_out=_digits(*images_and_labels(parts["held_out"][0])),
        conflicts=len(summary["conflicts"]),
        clients={part: shares for part, (_, shares) in parts.items()},
    )


def client_share_finding(clients: dict[str, ClientShares]) -> Finding:
    """What the share cap left out, as a finding that warns and blocks nothing."""
    left = [
        f"{part}: {client} sent {shares.sent[client]}, {count} left out (its newest)"
        for part, shares in clients.items()
        for client, count in shares.left_out.items()
    ]
    share = next(iter(clients.values())).max_share if clients else 1.0
    senders = len({client for shares in clients.values() for client in shares.sent})
    detail = f"at most {100 * share:g}% of the new examples from one client; {senders} clients"
    return Finding("client share", not left, False, detail + ("; " + "; ".join(left) if left else ", none over it"))


@task(cache_policy=NO_CACHE)
def validate_data(examples: StoreExamples, raw: MnistArrays) -> DataValidation:
    """Every stored example (both shares) checked before any training: see `data_checks.validate_examples`."""
    images = np.concatenate([examples.train.images.open(), examples.held_out.images.open()])
    labels = np.concatenate([examples.train.labels.open(), examples.held_out.labels.open()])
    test_images = raw.test_images.open()
    # With nothing stored, nothing can leak: MNIST's test images need not be prepared (seconds) to compare with none.
    forbidden = data_checks.known_test_images(test_images) if len(labels) else data_checks.LeakageGuard(test_images[:0])
    findings = data_checks.validate_examples(images, labels, examples.conflicts, forbidden, raw.train_labels.open())
    if examples.clients:
        findings.append(client_share_finding(examples.clients))
    return DataValidation(
        findings=findings, reason=data_checks.blocking_reason(findings), examples=len(labels), clients=examples.clients
    )


@task(**CACHED_RESULTS)
def add_examples(train: LabeledImages, examples: Digits) -> LabeledImages:
    """MNIST's (model-ready) training images followed by the new examples in the same layout."""
    cache = settings.cache_url()
    images = np.concatenate([train.images.open(), preprocessing.add_channel_axis(examples.images.open())])
    labels = np.concatenate([train.labels.open(), preprocessing.one_hot(examples.labels.open())])
    return LabeledImages(images=save_array(images, cache), labels=save_array(labels, cache))
