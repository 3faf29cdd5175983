"""Writes tests/data/mnist-first-1000: the first 1,000 training and 200 test images of MNIST.

python tests/data/make_subset.py PATH_TO_FULL_MNIST
"""

import gzip
import sys
from pathlib import Path

from mnist_pipeline.mnist import IDX_FILES, encode_idx, identify, read_directory

SIZES = {"train_images": 1000, "train_labels": 1000, "test_images": 200, "test_labels": 200}


def main(source: str) -> None:
    data = read_directory(Path(source))
    identify(data, source)
    target = Path(__file__).parent / "mnist-first-1000"
    target.mkdir(exist_ok=True)
    for field, name in IDX_FILES.items():
        subset = getattr(data, field)[: SIZES[field]]
        (target / f"{name}.gz").write_bytes(gzip.compress(encode_idx(subset), mtime=0))


if __name__ == "__main__":
    main(sys.argv[1])
