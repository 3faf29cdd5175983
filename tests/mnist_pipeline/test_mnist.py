import errno
import gzip
import hashlib
import re
import socket
from pathlib import Path

import numpy as np
import pytest

from mnist_pipeline.errors import PipelineError
from mnist_pipeline.mnist import (
    IDX_FILES,
    LOCAL_FILES_HINT,
    DataError,
    DownloadFailed,
    DownloadInterrupted,
    Mnist,
    decode_idx,
    download,
    encode_idx,
    identify,
    read_directory,
    read_idx,
)
from tests.conftest import PAYLOAD, PAYLOAD_SHA256

SUBSET = Path(__file__).parents[1] / "data" / "mnist-first-1000"


@pytest.fixture(scope="module")
def subset() -> Mnist:
    return read_directory(SUBSET)


def _raw_copy(tmp_path: Path) -> Path:
    """The shipped subset, decompressed, in a fresh directory."""
    directory = tmp_path / "raw"
    directory.mkdir()
    for name in IDX_FILES.values():
        (directory / name).write_bytes(gzip.decompress((SUBSET / f"{name}.gz").read_bytes()))
    return directory


@pytest.mark.parametrize("shape", [(7,), (3, 4, 5), (2, 28, 28), (0, 28, 28)])
def test_encode_decode_idx_round_trip(shape):
    array = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    content = encode_idx(array)
    assert content[:4] == bytes([0, 0, 0x08, len(shape)])
    assert len(content) == 4 + 4 * len(shape) + array.size
    decoded = decode_idx(content, "x")
    assert decoded.dtype == np.uint8 and decoded.shape == shape
    np.testing.assert_array_equal(decoded, array)


def test_read_idx_reads_gzip_and_raw_files_alike(tmp_path):
    array = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    (tmp_path / "raw").write_bytes(encode_idx(array))
    (tmp_path / "packed.gz").write_bytes(gzip.compress(encode_idx(array)))
    np.testing.assert_array_equal(read_idx(tmp_path / "raw"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "packed.gz"), array)


def test_truncated_gzip_raises_naming_the_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    packed = (SUBSET / "train-images-idx3-ubyte.gz").read_bytes()
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataError, match="not a complete gzip file") as error:
        read_idx(path)
    assert str(path) in str(error.value)


def test_truncated_idx_payload_raises_naming_the_file_and_sizes(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    content = encode_idx(np.arange(10, dtype=np.uint8))
    path.write_bytes(content[:-3])
    with pytest.raises(DataError, match="truncated") as error:
        read_idx(path)
    message = str(error.value)
    assert str(path) in message
    assert f"expected {len(content)} bytes" in message and f"got {len(content) - 3}" in message


def test_truncated_idx_header_raises_naming_the_file(tmp_path):
    path = tmp_path / "header-only"
    path.write_bytes(bytes([0, 0, 0x08, 3]) + b"\0\0\0\x02")  # 3 dimensions announced, 1 given
    with pytest.raises(DataError, match="header is incomplete") as error:
        read_idx(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    "content",
    [b"PK\x03\x04 a zip file", bytes([0, 0, 0x0D, 1, 0, 0, 0, 1]) + b"abcd", b"\0\0", b""],
    ids=["zip", "float-idx", "short", "empty"],
)
def test_bad_magic_raises_naming_the_file(tmp_path, content):
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(DataError, match="bad magic number") as error:
        read_idx(path)
    assert str(path) in str(error.value)


def test_read_directory_reads_the_shipped_subset(subset):
    assert subset.train_images.shape == (1000, 28, 28)
    assert subset.train_labels.shape == (1000,)
    assert subset.test_images.shape == (200, 28, 28)
    assert subset.test_labels.shape == (200,)
    assert all(array.dtype == np.uint8 for array in subset)
    assert set(np.unique(subset.train_labels)) == set(range(10))
    assert subset.train_labels.max() <= 9 and subset.test_labels.max() <= 9
    assert identify(subset, str(SUBSET)) == "mnist-first-1000"


def test_read_directory_reads_raw_copies(tmp_path, subset):
    data = read_directory(_raw_copy(tmp_path))
    for read, expected in zip(data, subset):
        np.testing.assert_array_equal(read, expected)
    assert identify(data, "raw") == "mnist-first-1000"


def test_missing_directory_raises_naming_it(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match="does not exist") as error:
        read_directory(missing)
    assert str(missing) in str(error.value)


def test_missing_files_raise_naming_each(tmp_path):
    directory = _raw_copy(tmp_path)
    (directory / "train-labels-idx1-ubyte").unlink()
    (directory / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(DataError) as error:
        read_directory(directory)
    message = str(error.value)
    assert str(directory) in message
    assert "train-labels-idx1-ubyte" in message and "t10k-images-idx3-ubyte" in message
    assert "train-images-idx3-ubyte" not in message and "t10k-labels-idx1-ubyte" not in message


def test_empty_directory_raises_naming_all_four_files(tmp_path):
    with pytest.raises(DataError) as error:
        read_directory(tmp_path)
    assert all(name in str(error.value) for name in IDX_FILES.values())


def _write_npz(directory: Path, data: Mnist, drop: str | None = None) -> Path:
    arrays = {
        "x_train": data.train_images,
        "y_train": data.train_labels,
        "x_test": data.test_images,
        "y_test": data.test_labels,
    }
    arrays.pop(drop, None)
    np.savez(directory / "mnist.npz", **arrays)
    return directory / "mnist.npz"


def test_read_directory_reads_and_identifies_an_npz(tmp_path, subset):
    _write_npz(tmp_path, subset)
    data = read_directory(tmp_path)
    for read, expected in zip(data, subset):
        assert read.dtype == np.uint8
        np.testing.assert_array_equal(read, expected)
    assert identify(data, str(tmp_path)) == "mnist-first-1000"


def test_npz_missing_a_key_raises_naming_it(tmp_path, subset):
    path = _write_npz(tmp_path, subset, drop="y_test")
    with pytest.raises(DataError, match="y_test") as error:
        read_directory(tmp_path)
    assert str(path) in str(error.value)
    assert "x_train" not in str(error.value)


def test_unreadable_npz_raises_naming_it(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"not a zip archive")
    with pytest.raises(DataError, match="not a readable .npz") as error:
        read_directory(tmp_path)
    assert str(tmp_path / "mnist.npz") in str(error.value)


def test_one_changed_pixel_makes_identify_name_the_file(subset):
    tampered = subset.train_images.copy()
    tampered[123, 14, 14] ^= 0x01
    with pytest.raises(DataError, match="does not hold MNIST") as error:
        identify(subset._replace(train_images=tampered), "my-source")
    message = str(error.value)
    assert "my-source" in message and "train-images-idx3-ubyte" in message
    assert not any(name in message for name in ("train-labels", "t10k-images", "t10k-labels"))


def test_a_truncated_subset_is_not_identified(subset):
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        identify(subset._replace(test_labels=subset.test_labels[:-1]), "short")


# --- download, from a local HTTP server -----------------------------------------------------------


def test_download_fetches_and_verifies(tmp_path, server):
    url, requests = server
    destination = tmp_path / "cache" / "mnist.npz"
    assert download(url, destination, PAYLOAD_SHA256, timeout=10) == destination
    assert destination.read_bytes() == PAYLOAD
    assert requests == ["/mnist.npz"]
    assert sorted(p.name for p in destination.parent.iterdir()) == ["mnist.npz"]


def test_download_with_wrong_digest_raises_and_leaves_no_file(tmp_path, server):
    url, _ = server
    destination = tmp_path / "mnist.npz"
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(DataError, match="corrupt") as error:
        download(url, destination, wrong, timeout=10)
    message = str(error.value)
    assert url in message and PAYLOAD_SHA256[:12] in message and wrong[:12] in message
    assert list(tmp_path.iterdir()) == []


def test_download_skips_a_good_existing_file(tmp_path, server):
    url, requests = server
    destination = tmp_path / "mnist.npz"
    destination.write_bytes(PAYLOAD)
    assert download(url, destination, PAYLOAD_SHA256, timeout=10) == destination
    assert requests == []


def test_download_replaces_a_bad_existing_file(tmp_path, server):
    url, requests = server
    destination = tmp_path / "mnist.npz"
    destination.write_bytes(PAYLOAD[:-1])
    download(url, destination, PAYLOAD_SHA256, timeout=10)
    assert destination.read_bytes() == PAYLOAD
    assert requests == ["/mnist.npz"]


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://mnist.invalid/mnist.npz", r"\[Errno -\d+\] .*"),  # a name that does not resolve: offline
        ("http://127.0.0.1:{closed_port}/mnist.npz", r"\[Errno 111\] Connection refused"),
        ("{server}/status/404", r"HTTP Error 404: Not Found"),
    ],
    ids=["unresolvable-host", "connection-refused", "not-found"],
)
def test_a_download_that_a_retry_cannot_fix_says_where_from_why_and_how_to_use_local_files(
    tmp_path, server, url, reason
):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]
    url = url.format(server=server[0].rsplit("/", 1)[0], closed_port=closed_port)
    with pytest.raises(DownloadFailed) as error:
        download(url, tmp_path / "mnist.npz", PAYLOAD_SHA256, timeout=10)
    assert re.fullmatch(rf"MNIST could not be downloaded from {re.escape(url)} \({reason}\); (.*)", str(error.value))
    assert str(error.value).endswith(LOCAL_FILES_HINT) and "MNIST_DATA_DIR" in LOCAL_FILES_HINT
    assert list(tmp_path.iterdir()) == []


def test_a_busy_server_or_a_timeout_may_pass(tmp_path, server):
    url = server[0].rsplit("/", 1)[0] + "/status/503"
    with pytest.raises(DownloadInterrupted, match=r"HTTP Error 503"):
        download(url, tmp_path / "mnist.npz", PAYLOAD_SHA256, timeout=10)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts the connection, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/mnist.npz"
        with pytest.raises(DownloadInterrupted, match="timed out"):
            download(url, tmp_path / "mnist.npz", PAYLOAD_SHA256, timeout=0.5)
    assert list(tmp_path.iterdir()) == []


def test_unreadable_mnist_files_name_the_setting(tmp_path, monkeypatch):
    data = _raw_copy(tmp_path)

    def denied(path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(PipelineError) as error:
        read_directory(data)
    assert str(error.value) == (
        f"MNIST_DATA_DIR (or --data-dir) {data}: cannot read the MNIST files (Permission denied); make them readable"
    )
