"""The leakage check on near-copies of MNIST test images: how many it catches, how many new digits it refuses
by mistake, and what one check costs. `python bench/near_copies.py [--digits 10000] [--copies 2000]`; about a
minute on two cores. Reads MNIST from $MNIST_DATA_DIR (or the downloaded copy).

Near-copies of test digits: re-saved as JPEG at quality 75, moved by one pixel, moved by two, with Gaussian noise
of sigma 10 gray levels, each as an uploaded file (prepared like the service and add-data prepare it) and, where it
differs, as a raw array. Not copies: MNIST's training digits (other writers' digits), as files and as arrays.
"""

import argparse
import io
import time

import numpy as np
from measure import matmul_reference
from PIL import Image

from mnist_pipeline import mnist, settings
from mnist_pipeline.data_checks import NEAR_COPY_SIMILARITY, LeakageGuard, prepared_test_images
from mnist_pipeline.images import ImageError, digit_from_bytes


def encoded(image: np.ndarray, image_format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=image_format, **options)
    return buffer.getvalue()


def uploaded(images) -> np.ndarray:
    """The images as the service stores them: encoded as PNG, then prepared (blank ones left out)."""
    prepared = []
    for image in images:
        try:
            prepared.append(digit_from_bytes(encoded(image)))
        except ImageError:
            pass
    return np.stack(prepared)


def moved(image: np.ndarray, down: int, right: int) -> np.ndarray:
    return np.roll(image, (down, right), axis=(0, 1))


def noisy(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.uint8(np.clip(np.round(image + rng.normal(0, 10, image.shape)), 0, 255))


def near_copies(test: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    steps = [(0, 1), (1, 0), (0, -1), (-1, 0)]
    far = [(0, 2), (2, 0), (-1, -1), (-2, 1), (1, -2)]
    one = np.stack([moved(image, *steps[i % 4]) for i, image in enumerate(test)])
    two = np.stack([moved(image, *far[i % 5]) for i, image in enumerate(test)])
    noise = np.stack([noisy(image, rng) for image in test])
    return {
        "JPEG quality 75, uploaded": np.stack([digit_from_bytes(encoded(image, "JPEG", quality=75)) for image in test]),
        "moved 1 pixel, uploaded": uploaded(one),
        "moved 1 pixel, array": one,
        "moved 2 pixels (or 1 diagonally), array": two,
        "noise sigma 10, uploaded": uploaded(noise),
        "noise sigma 10, array": noise,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, default=10_000, help="training digits measured as non-copies")
    parser.add_argument("--copies", type=int, default=2_000, help="test digits made into near-copies")
    options = parser.parse_args()
    rng = np.random.default_rng(0)
    data = mnist.load(settings.data_dir(), settings.download_dir())[1]
    print(f"reference: 1024x1024 float64 matmul {1000 * matmul_reference():.1f} ms CPU")

    start = time.process_time()
    guard = LeakageGuard(data.test_images, prepared_test_images(data.test_images))
    print(f"index of {len(data.test_images):,} test images (prepared and indexed): {time.process_time() - start:.1f} s")

    train = data.train_images[rng.choice(len(data.train_images), options.digits, replace=False)]
    test = data.test_images[rng.choice(len(data.test_images), options.copies, replace=False)]
    groups = {"training digits, uploaded": uploaded(train), "training digits, array": train}
    groups |= near_copies(test, rng)
    print(f"threshold: shape similarity >= {NEAR_COPY_SIMILARITY}")
    print("| digits | n | refused | CPU ms per check |")
    print("|---|---|---|---|")
    for name, images in groups.items():
        start = time.process_time()
        similarity = np.concatenate([guard.similarity(images[i : i + 1]) for i in range(len(images))])
        per_check = 1000 * (time.process_time() - start) / len(images)
        print(
            f"| {name} | {len(images):,} | {100 * np.mean(similarity >= NEAR_COPY_SIMILARITY):.2f}% | {per_check:.1f} |"
        )


if __name__ == "__main__":
    main()
