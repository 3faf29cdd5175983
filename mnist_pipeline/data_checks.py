"""Checks of new labeled examples: one row before it is stored, the store's examples before training.

A stored example whose image digest falls in the held-out share (every fifth digest value) is never
trained on: those are the "users' digits" test set. The share follows from the digest alone, so an
example never moves between training and test as the store grows.
"""

import hashlib
from collections import Counter
from typing import NamedTuple

import numpy as np
from PIL import Image

from mnist_pipeline import files, mnist, settings
from mnist_pipeline.arrays import array_sha256
from mnist_pipeline.errors import PipelineError, naming_the_setting
from mnist_pipeline.images import SIDE, ImageError, ink_of, to_mnist
from mnist_pipeline.source_digest import code_version

HELD_OUT_EVERY = 5
MIX_MINIMUM = 20  # fewer examples than this: the label mix says too little to block a run
MIX_LIMIT = 0.5  # one digit over this share of the examples (MNIST's largest is 11%) blocks the run


class ExampleRefused(PipelineError):
    """A labeled example that must not be stored (a copy of an MNIST test image)."""


class DataRejected(PipelineError):
    """The store's examples failed validation: nothing is trained on them until they are fixed."""


class Finding(NamedTuple):
    check: str
    passed: bool
    blocking: bool  # a failed blocking check stops the run
    detail: str


def is_held_out(sha256: str) -> bool:
    return int(sha256[:16], 16) % HELD_OUT_EVERY == 0


def _sha256(image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image, np.uint8).tobytes()).hexdigest()


def test_image_digests(test_images: np.ndarray) -> frozenset[str]:
    """Digests of each MNIST test image as it is and as `add-data` or the service would store a lossless
    copy of it (prepared like any uploaded image): a stored example with one of them leaks the test set."""
    digests = set()
    for image in test_images:
        digests.add(_sha256(image))
        try:
            digests.add(_sha256(to_mnist(ink_of(Image.fromarray(image)))))
        except ImageError:  # a blank image cannot be stored anyway
            pass
    return frozenset(digests)


def known_test_image_digests(test_images: np.ndarray) -> frozenset[str]:
    """`test_image_digests`, computed once per test set and version of this code (seconds for MNIST's
    10,000 images) and then read from a file in `settings.test_digests_dir()`."""
    key = hashlib.sha256(f"{array_sha256(test_images)} {code_version(__name__)}".encode()).hexdigest()
    path = settings.test_digests_dir() / f"{key}.txt"
    if path.is_file():
        return frozenset(path.read_text().split())
    digests = test_image_digests(test_images)
    with naming_the_setting(
        settings.ARTIFACTS_DIR_VARIABLE,
        settings.artifacts_dir(),
        "cannot save digests in it",
        "set it to a writable folder",
    ):
        files.write_bytes(path, "\n".join(sorted(digests)).encode())
    return digests


def refuse_test_copy(sha256: str, forbidden: frozenset[str]) -> None:
    if sha256 in forbidden:
        raise ExampleRefused("a copy of an MNIST test image: storing it would leak the test set into training")


def validate_examples(
    images: np.ndarray, labels: np.ndarray, conflicts: int, forbidden: frozenset[str], reference: np.ndarray
) -> list[Finding]:
    """The store's accepted examples against the checks a run needs; `reference` holds MNIST's training labels."""
    shape_ok = images.ndim == 3 and images.shape[1:] == (SIDE, SIDE) and len(images) == len(labels)
    dtype_ok = images.dtype == np.uint8
    blank = int((images.reshape(len(images), -1).max(axis=1) == 0).sum()) if shape_ok and len(images) else 0
    bad_labels = int(((labels < 0) | (labels > 9)).sum())
    leaked = sum(_sha256(image) in forbidden for image in images) if shape_ok else 0
    findings = [
        Finding("shapes", shape_ok, True, f"{len(images)} images of {images.shape[1:]}, {len(labels)} labels"),
        Finding("dtype and range", dtype_ok and blank == 0, True, f"{images.dtype}, {blank} blank images"),
        Finding("labels 0-9", bad_labels == 0, True, f"{bad_labels} labels outside 0-9"),
        Finding(
            "conflicts", conflicts == 0, False, f"{conflicts} images with two labels, left out until one is removed"
        ),
        Finding("MNIST test images", leaked == 0, True, f"{leaked} copies of MNIST test images"),
    ]
    if len(labels):
        counts = Counter(int(label) for label in labels)
        digit, count = counts.most_common(1)[0]
        share = count / len(labels)
        mnist_share = float(np.mean(reference == digit)) if len(reference) else 0.1
        enough = len(labels) >= MIX_MINIMUM
        findings.append(
            Finding(
                "label mix",
                not (enough and share > MIX_LIMIT),
                True,
                f"{100 * share:.0f}% of the examples are {digit}s (MNIST: {100 * mnist_share:.0f}%)"
                + ("" if enough else f"; fewer than {MIX_MINIMUM} examples, not judged"),
            )
        )
    return findings


def blocking_reason(findings: list[Finding]) -> str | None:
    """One line naming each failed blocking check, or None when the data may be trained on."""
    failed = [f"{finding.check}: {finding.detail}" for finding in findings if finding.blocking and not finding.passed]
    if not failed:
        return None
    return "new data refused (" + "; ".join(failed) + "); fix the store (`mnist-pipeline data`) and retrain"


def mnist_test_digests() -> frozenset[str]:
    """`test_image_digests` of the MNIST that flows read ($MNIST_DATA_DIR, else the downloaded copy)."""
    return known_test_image_digests(mnist.load(settings.data_dir(), settings.download_dir())[1].test_images)
