"""A version's reference: what it answered on the MNIST test images of the reference half, which no version trains
on, and what those digits look like. A window of served predictions is compared with it.

The reference half is fixed by each image's digest (the first byte of the SHA-256 of its 784 bytes is even), so it
is the same for every version and every machine; the other half is left for checks that must not reuse it.
"""

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_pipeline import preprocessing
from mnist_pipeline.monitoring.digits import digit_statistics
from mnist_pipeline.preprocessing import ScalingStats

PCA_COMPONENTS = 24
FIELDS = ("probabilities", "labels", "statistics", "pca_mean", "pca_components", "projected", "mean_image")


class ReferenceError(ValueError):
    """Bytes that are not a reference this code can read."""


def in_reference_half(images: np.ndarray) -> np.ndarray:
    """A boolean per uint8 image (n, 28, 28): whether it belongs to the reference half."""
    return np.array([hashlib.sha256(image.tobytes()).digest()[0] % 2 == 0 for image in images], dtype=bool)


@dataclass(frozen=True)
class Reference:
    probabilities: np.ndarray  # (n, 10) the version's softmax on the reference images
    labels: np.ndarray  # (n,) their true digits
    statistics: np.ndarray  # (n, len(digits.STATISTICS))
    pca_mean: np.ndarray  # (784,) pixels / 255
    pca_components: np.ndarray  # (k, 784)
    projected: np.ndarray  # (n, k) the reference images in the PCA's coordinates
    mean_image: np.ndarray  # (28, 28) pixels / 255

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.predicted == self.labels))

    def project(self, images: np.ndarray) -> np.ndarray:
        """uint8 images (n, 28, 28) in the reference's PCA coordinates."""
        pixels = images.reshape(len(images), -1).astype(np.float32) / 255
        return (pixels - self.pca_mean) @ self.pca_components.T

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **{name: getattr(self, name) for name in FIELDS})
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Reference":
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                reference = cls(**{name: arrays[name] for name in FIELDS})
        except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as error:
            raise ReferenceError(f"not a monitoring reference ({error})") from None
        rows = {
            len(reference.probabilities),
            len(reference.labels),
            len(reference.statistics),
            len(reference.projected),
        }
        if len(rows) != 1 or reference.probabilities.shape[1:] != (10,) or reference.pca_mean.shape != (784,):
            raise ReferenceError("a monitoring reference whose arrays do not fit together")
        return reference


def build_reference(images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray) -> Reference:
    """The reference of a version that answered `probabilities` on uint8 `images` (n, 28, 28) of digits `labels`."""
    pixels = images.reshape(len(images), -1).astype(np.float32) / 255
    mean = pixels.mean(axis=0)
    centered = pixels - mean
    _, axes = np.linalg.eigh(centered.T @ centered)  # ascending eigenvalues: the last columns explain the most
    components = axes[:, ::-1][:, :PCA_COMPONENTS].T.astype(np.float32)
    return Reference(
        probabilities=probabilities.astype(np.float32),
        labels=labels.astype(np.uint8),
        statistics=digit_statistics(images),
        pca_mean=mean,
        pca_components=components,
        projected=((pixels - mean) @ components.T).astype(np.float32),
        mean_image=mean.reshape(28, 28),
    )


def model_reference(model_path: str | Path, scaling: ScalingStats, images: np.ndarray, labels: np.ndarray) -> Reference:
    """The reference of the model at `model_path` from the reference half of MNIST's test `images`."""
    from mnist_pipeline.models import load_checked_model

    half = in_reference_half(images)
    model = load_checked_model(Path(model_path))
    probabilities = model.predict(preprocessing.model_input(images[half], scaling), batch_size=512, verbose=0)
    return build_reference(images[half], labels[half], probabilities)
