"""Bad data directories and a full disk: a clear error, and nothing saved before is lost."""

import errno
import gzip
import re
import shutil

import numpy as np
import pytest

from mnist_pipeline.arrays import array_sha256
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.flows.cross_validate import cross_validate
from mnist_pipeline.flows.finalize import finalize
from mnist_pipeline.mnist import DataError, encode_idx, read_directory

# The folds train in threads: these tests are about data and files, not about fold processes.
QUICK = {"folds": 2, "epochs": 1, "limit": 200, "runner": "thread"}
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def subset_copy(source, target):
    target.mkdir()
    data = read_directory(source)
    for name, array in zip(
        FILES, (data.train_images[:1000], data.train_labels[:1000], data.test_images[:200], data.test_labels[:200])
    ):
        (target / f"{name}.gz").write_bytes(gzip.compress(encode_idx(array)))
    return target


def missing(directory):
    return directory / "nowhere", r"MNIST directory .*nowhere does not exist; set MNIST_DATA_DIR"


def partial(directory):
    (directory / "t10k-labels-idx1-ubyte.gz").unlink()
    return directory, r"lacks t10k-labels-idx1-ubyte\[\.gz\]; add the missing MNIST files"


def truncated(directory):
    path = directory / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:5000])
    return directory, r"train-images-idx3-ubyte\.gz is not a complete gzip file"


def wrong_shape(directory):
    images = read_directory(directory).train_images[:, :27, :]
    (directory / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(encode_idx(np.ascontiguousarray(images))))
    return directory, r"does not hold MNIST: train-images-idx3-ubyte \(sha256 .*\); replace those files"


def tampered(directory):
    labels = read_directory(directory).train_labels.copy()
    labels[0] = (labels[0] + 1) % 10
    (directory / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(encode_idx(labels)))
    return directory, r"does not hold MNIST: train-labels-idx1-ubyte \(sha256"


@pytest.fixture(scope="module")
def earlier_run(prefect_server, mnist_dir, tmp_path_factory):
    """A good data folder and the artifacts of a finished run made from it."""
    root = tmp_path_factory.mktemp("earlier")
    good = subset_copy(mnist_dir, root / "good")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MNIST_ARTIFACTS_DIR", str(root / "artifacts"))
        cross_validate(**QUICK, data_dir=str(good), output_dir=str(root / "artifacts" / "run"))
        saved = {path: path.read_bytes() for path in (root / "artifacts").rglob("*") if path.is_file()}
        yield good, saved


@pytest.mark.parametrize("damage", [missing, partial, truncated, wrong_shape, tampered])
def test_a_bad_data_directory_is_named_and_earlier_results_survive(damage, earlier_run, tmp_path):
    good, saved = earlier_run
    data_dir, message = damage(shutil.copytree(good, tmp_path / "bad"))
    with pytest.raises(DataError, match=message):
        cross_validate(**QUICK, data_dir=str(data_dir), output_dir=str(tmp_path / "after"))
    assert all(path.read_bytes() == content for path, content in saved.items())


def test_a_full_disk_fails_the_write_and_keeps_the_cache(
    prefect_server, artifacts_dir, mnist_dir, tmp_path, monkeypatch
):
    cross_validate(**QUICK, data_dir=str(mnist_dir), output_dir=str(tmp_path / "before"))
    cached = sorted((artifacts_dir / "cache").glob("*.npy"))
    real_save = np.save

    def disk_fills_up(file, array, **kwargs):
        real_save(file, array[: len(array) // 2], **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", disk_fills_up)
    with pytest.raises(
        PipelineError,
        match=re.escape(
            f"MNIST_ARTIFACTS_DIR {artifacts_dir / 'cache'}: cannot write the array cache (No space left on device)"
        ),
    ):
        cross_validate(**QUICK, scaling="center", data_dir=str(mnist_dir), output_dir=str(tmp_path / "full"))
    assert sorted((artifacts_dir / "cache").glob("*.npy")) == cached, "no half-written array is left behind"
    assert not list((artifacts_dir / "cache").glob(".*.tmp"))
    for path in cached:
        assert array_sha256(np.load(path)) == path.stem

    monkeypatch.undo()
    assert (
        finalize(
            model="baseline", epochs=1, limit=200, data_dir=str(mnist_dir), output_dir=str(tmp_path / "after")
        ).version
        == "v0001"
    )
