"""Checks of new labeled examples: one row before it is stored, the store's examples before training.

A stored example whose image digest falls in the held-out share (every fifth digest value) is never
trained on: those are the "users' digits" test set. The share follows from the digest alone, so an
example never moves between training and test as the store grows.
"""

import hashlib
import io
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
NEAR_COPY_SIMILARITY = 0.995  # shapes this correlated with a test image's are a copy of it (bench/near_copies.py)
CANDIDATES = 16  # test images the coarse index hands to the full comparison
INK_FLOOR = 64  # fainter pixels are left out of a shape: JPEG ringing and noise
MAX_SHIFT = 6  # centering moves a digit at most this far
_distance = np.arange(SIDE)[:, None] - np.arange(SIDE)[None, :]
BLUR = np.where(abs(_distance) <= 3, np.exp(-0.5 * _distance**2), 0).astype(np.float32)
BLUR /= BLUR.sum(axis=1, keepdims=True).max()


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


def prepared_test_images(test_images: np.ndarray) -> np.ndarray:
    """Each MNIST test image as `add-data` or the service would store a lossless copy of it (prepared like any
    uploaded image; a blank one as it is, since it cannot be stored anyway)."""
    prepared = test_images.copy()
    for index, image in enumerate(test_images):
        try:
            prepared[index] = to_mnist(ink_of(Image.fromarray(image)))
        except ImageError:
            pass
    return prepared


def test_image_digests(test_images: np.ndarray, prepared: np.ndarray | None = None) -> frozenset[str]:
    """Digests of each MNIST test image as it is and as prepared: a stored example with one of them leaks the test
    set."""
    prepared = prepared_test_images(test_images) if prepared is None else prepared
    return frozenset(_sha256(image) for images in (test_images, prepared) for image in images)


class LeakageGuard:
    """What the leakage check refuses: exact copies of MNIST's test images (by digest), and near-copies (re-saved
    as JPEG, shifted by a pixel or two, with a little noise) by the similarity of their shapes.

    A near-copy is found in two steps: a coarse index (each test image's shape at 14x14) gives the few closest test
    images, and their full 28x28 shapes, tried at every shift of one pixel, give the similarity. Thresholds and their
    false-refusal and catch rates: docs/BAD_INPUT.md, from `bench/near_copies.py`.
    """

    def __init__(self, test_images: np.ndarray, prepared: np.ndarray | None = None):
        prepared = prepared_test_images(test_images) if prepared is None else prepared
        self.digests = test_image_digests(test_images, prepared)
        images = shapes(np.concatenate([test_images, prepared]))
        self.index = coarse(images)
        self.shapes = unit_rows(images).astype(np.float16)  # 31 MB for MNIST's test set, half of float32

    def __contains__(self, sha256: object) -> bool:
        return sha256 in self.digests

    def similarity(self, images: np.ndarray) -> np.ndarray:
        """For each 28x28 uint8 image, its shape's similarity to the closest test image, in [-1, 1]."""
        if not len(self.shapes) or not len(images):
            return np.full(len(images), -1.0)
        query = shapes(images)
        shifted = unit_rows(one_pixel_shifts(query)).reshape(len(images), 9, -1)
        closest = np.empty(len(images))
        for row, index_row in enumerate(coarse(query)):
            # einsum, not BLAS: a single query is faster on one thread than on threads that wait for busy cores
            found = np.argpartition(-np.einsum("f,mf->m", index_row, self.index), CANDIDATES)[:CANDIDATES]
            closest[row] = (shifted[row] @ self.shapes[found].astype(np.float32).T).max()
        return closest

    def refusal(self, image: np.ndarray, sha256: str) -> str | None:
        """Why `image` must not be stored, or None."""
        if sha256 in self.digests:
            return "a copy of an MNIST test image: storing it would leak the test set into training"
        similarity = float(self.similarity(image[None])[0])
        if similarity >= NEAR_COPY_SIMILARITY:
            return (
                f"a near-copy of an MNIST test image (shape similarity {similarity:.4f}, {NEAR_COPY_SIMILARITY} or "
                "more is a copy): storing it would leak the test set into training; send another digit"
            )
        return None


def shapes(images: np.ndarray) -> np.ndarray:
    """What a near-copy keeps of a digit: the ink above INK_FLOOR, moved to put its center of mass at the center,
    blurred by a pixel (float32, N x 28 x 28)."""
    ink = np.where(images >= INK_FLOOR, images, 0).astype(np.float32)
    mass = ink.sum(axis=(1, 2)) + 1e-6
    rows, columns = np.indices((SIDE, SIDE))
    down = np.rint((SIDE - 1) / 2 - (ink * rows).sum(axis=(1, 2)) / mass).astype(int)
    right = np.rint((SIDE - 1) / 2 - (ink * columns).sum(axis=(1, 2)) / mass).astype(int)
    reach = MAX_SHIFT
    padded = np.pad(ink, ((0, 0), (reach, reach), (reach, reach)))
    moved = np.empty_like(ink)
    for dy, dx in set(zip(np.clip(down, -reach, reach), np.clip(right, -reach, reach))):
        which = (np.clip(down, -reach, reach) == dy) & (np.clip(right, -reach, reach) == dx)
        moved[which] = padded[which, reach - dy : reach - dy + SIDE, reach - dx : reach - dx + SIDE]
    return blur(moved)


def blur(images: np.ndarray) -> np.ndarray:
    """A Gaussian blur of sigma 1 pixel along both image axes (ink beyond the border counts as none)."""
    return (BLUR @ images @ BLUR.T).astype(np.float32)


def one_pixel_shifts(images: np.ndarray) -> np.ndarray:
    """Each image moved by -1, 0 and 1 pixel along each axis: N * 9 images, an image's nine together."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    moved = [padded[:, 1 + dy : 1 + dy + SIDE, 1 + dx : 1 + dx + SIDE] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    return np.stack(moved, axis=1).reshape(-1, SIDE, SIDE)


def coarse(images: np.ndarray) -> np.ndarray:
    """Shapes at 14x14, as unit rows: the index that finds the candidates."""
    return unit_rows(images.reshape(len(images), SIDE // 2, 2, SIDE // 2, 2).mean(axis=(2, 4)))


def unit_rows(images: np.ndarray) -> np.ndarray:
    """Images as rows of zero mean and unit length: their dot products are correlations."""
    rows = images.reshape(len(images), int(np.prod(images.shape[1:]))).astype(np.float32)
    rows -= rows.mean(axis=1, keepdims=True)
    return rows / (np.linalg.norm(rows, axis=1, keepdims=True) + 1e-6)


def known_test_images(test_images: np.ndarray) -> LeakageGuard:
    """The LeakageGuard of a test set; its prepared images computed once per test set and version of this code
    (seconds for MNIST's 10,000 images) and then read from a file in `settings.test_digests_dir()`."""
    key = hashlib.sha256(f"{array_sha256(test_images)} {code_version(__name__)}".encode()).hexdigest()
    path = settings.test_digests_dir() / f"{key}.npy"
    if path.is_file():
        return LeakageGuard(test_images, np.load(path, allow_pickle=False))
    prepared = prepared_test_images(test_images)
    buffer = io.BytesIO()
    np.save(buffer, prepared, allow_pickle=False)
    with naming_the_setting(
        settings.ARTIFACTS_DIR_VARIABLE,
        settings.artifacts_dir(),
        "cannot save digests in it",
        "set it to a writable folder",
    ):
        files.write_bytes(path, buffer.getvalue())
    return LeakageGuard(test_images, prepared)


def refuse_test_copy(image: np.ndarray, sha256: str, guard: LeakageGuard) -> None:
    if reason := guard.refusal(image, sha256):
        raise ExampleRefused(reason)


def validate_examples(
    images: np.ndarray, labels: np.ndarray, conflicts: int, forbidden: LeakageGuard, reference: np.ndarray
) -> list[Finding]:
    """The store's accepted examples against the checks a run needs; `reference` holds MNIST's training labels."""
    shape_ok = images.ndim == 3 and images.shape[1:] == (SIDE, SIDE) and len(images) == len(labels)
    dtype_ok = images.dtype == np.uint8
    blank = int((images.reshape(len(images), -1).max(axis=1) == 0).sum()) if shape_ok and len(images) else 0
    bad_labels = int(((labels < 0) | (labels > 9)).sum())
    exact = np.array([_sha256(image) in forbidden for image in images], bool) if shape_ok else np.zeros(0, bool)
    close = forbidden.similarity(images) >= NEAR_COPY_SIMILARITY if shape_ok and dtype_ok else np.zeros(0, bool)
    leaked, near = int(exact.sum()), int((close & ~exact).sum()) if len(close) else 0
    findings = [
        Finding("shapes", shape_ok, True, f"{len(images)} images of {images.shape[1:]}, {len(labels)} labels"),
        Finding("dtype and range", dtype_ok and blank == 0, True, f"{images.dtype}, {blank} blank images"),
        Finding("labels 0-9", bad_labels == 0, True, f"{bad_labels} labels outside 0-9"),
        Finding(
            "conflicts", conflicts == 0, False, f"{conflicts} images with two labels, left out until one is removed"
        ),
        Finding(
            "MNIST test images",
            leaked + near == 0,
            True,
            f"{leaked} copies of MNIST test images" + (f" and {near} near-copies" if near else ""),
        ),
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


def mnist_test_digests() -> LeakageGuard:
    """The LeakageGuard of the MNIST that flows read ($MNIST_DATA_DIR, else the downloaded copy)."""
    return known_test_images(mnist.load(settings.data_dir(), settings.download_dir())[1].test_images)


NO_TEST_IMAGES = LeakageGuard(np.zeros((0, SIDE, SIDE), np.uint8))  # nothing refused
