"""Reading MNIST from IDX files or a Keras `mnist.npz`, verifying it, and downloading it."""

import errno
import gzip
import hashlib
import http.client
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mnist_pipeline.errors import PipelineError, naming_the_setting
from mnist_pipeline.files import replacing

KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
NPZ_KEYS = {"train_images": "x_train", "train_labels": "y_train", "test_images": "x_test", "test_labels": "y_test"}

# SHA-256 of each decompressed IDX file. A source is accepted only if every decoded array,
# written back as IDX, has the digest of one known dataset.
KNOWN_DIGESTS = {
    "mnist": {
        "train_images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train_labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "test_images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "test_labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    # The first 1,000 training and 200 test images of MNIST, shipped in tests/data.
    "mnist-first-1000": {
        "train_images": "386bb018796babeaca208787b77c1b9db39532c4098951ea35f4694e744eb4b7",
        "train_labels": "895f65588e45d05babf0b5fa7aee2a0d782d8143b40b5764e596df91bc9dddeb",
        "test_images": "cefe86a05637f831a20aef251bd9db19004a2c986ec848d345c40ffd09264afc",
        "test_labels": "181dda88fbf8032cf747bf0766ad9d035b6bb747997214d834eb8d2f33a72210",
    },
}

_IDX_UBYTE = 0x08


LOCAL_FILES_HINT = (
    "to use local files, set MNIST_DATA_DIR (or pass --data-dir) to a folder with the four MNIST IDX files or mnist.npz"
)


class DataError(PipelineError):
    """MNIST files that are missing, truncated, malformed or not MNIST."""


class DownloadFailed(DataError):
    """MNIST could not be downloaded, for a reason a retry does not fix: no network, or the URL is wrong."""


class DownloadInterrupted(DataError):
    """MNIST could not be downloaded, for a reason that may pass: a timeout, a dropped connection, a busy server."""


class Mnist(NamedTuple):
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def decode_idx(content: bytes, name: str) -> np.ndarray:
    """The uint8 array in an IDX file's bytes; `name` is only used in error messages."""
    if len(content) < 4 or content[:2] != b"\0\0" or content[2] != _IDX_UBYTE:
        raise DataError(f"{name} is not an IDX file of unsigned bytes (bad magic number)")
    ndim = content[3]
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise DataError(f"{name} is truncated: its header is incomplete")
    shape = tuple(int(d) for d in np.frombuffer(content, ">u4", count=ndim, offset=4))
    expected = header_size + int(np.prod(shape))
    if len(content) != expected:
        raise DataError(
            f"{name} is truncated or padded: expected {expected} bytes for shape {shape}, got {len(content)}"
        )
    return np.frombuffer(content, np.uint8, offset=header_size).reshape(shape)


def encode_idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, _IDX_UBYTE, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def idx_sha256(array: np.ndarray) -> str:
    """The digest of `array` written as an IDX file: comparable with the canonical file digests."""
    return hashlib.sha256(encode_idx(array)).hexdigest()


def read_idx(path: Path) -> np.ndarray:
    """An IDX file, gzip-compressed or raw (detected from its first bytes)."""
    content = path.read_bytes()
    if content[:2] == b"\x1f\x8b":
        try:
            content = gzip.decompress(content)
        except (EOFError, OSError) as error:
            raise DataError(f"{path} is not a complete gzip file ({error}); copy it again") from None
    return decode_idx(content, str(path))


def read_npz(path: Path) -> Mnist:
    """A Keras-style `mnist.npz` (x_train, y_train, x_test, y_test); never unpickles."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = sorted(set(NPZ_KEYS.values()) - set(archive.files))
            if missing:
                raise DataError(f"{path} lacks the arrays {', '.join(missing)} of a Keras mnist.npz")
            return Mnist(**{field: np.asarray(archive[key], np.uint8) for field, key in NPZ_KEYS.items()})
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"{path} is not a readable .npz file ({error})") from None


def read_directory(directory: Path) -> Mnist:
    """The four IDX files (`.gz` or raw) in `directory`, or else its `mnist.npz`."""
    if not directory.is_dir():
        raise DataError(
            f"MNIST directory {directory} does not exist; set MNIST_DATA_DIR to a folder with the MNIST files"
        )
    found = {field: _find_idx(directory, name) for field, name in IDX_FILES.items()}
    if not any(found.values()) and (directory / "mnist.npz").is_file():
        return read_npz(directory / "mnist.npz")
    missing = [IDX_FILES[field] for field, path in found.items() if path is None]
    if missing:
        raise DataError(
            f"{directory} lacks {', '.join(name + '[.gz]' for name in missing)}; add the missing MNIST files"
        )
    with naming_the_setting(
        "MNIST_DATA_DIR (or --data-dir)", directory, "cannot read the MNIST files", "make them readable"
    ):
        return Mnist(**{field: read_idx(path) for field, path in found.items()})


def _find_idx(directory: Path, name: str) -> Path | None:
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    return None


def identify(data: Mnist, source: str) -> str:
    """The name of the known dataset `data` is, or DataError naming each array that differs."""
    digests = {field: idx_sha256(array) for field, array in data._asdict().items()}
    for name, known in KNOWN_DIGESTS.items():
        if digests == known:
            return name
    closest = max(KNOWN_DIGESTS.values(), key=lambda known: sum(known[f] == digests[f] for f in known))
    wrong = [
        f"{IDX_FILES[f]} (sha256 {digests[f][:12]}..., expected {closest[f][:12]}...)"
        for f in closest
        if digests[f] != closest[f]
    ]
    raise DataError(f"{source} does not hold MNIST: {'; '.join(wrong)}; replace those files with the canonical ones")


def download(url: str, destination: Path, sha256: str, timeout: float = 60) -> Path:
    """Fetch `url` to `destination` unless a file with digest `sha256` is already there."""
    if destination.is_file() and file_sha256(destination) == sha256:
        return destination
    with (
        naming_the_setting(
            "download folder",
            destination.parent,
            "cannot write",
            "set XDG_CACHE_HOME to a writable folder, or " + LOCAL_FILES_HINT,
        ),
        replacing(destination) as partial,
    ):
        with open(partial, "wb") as file:
            for chunk in fetch_chunks(url, timeout):
                file.write(chunk)
        actual = file_sha256(partial)
        if actual != sha256:
            raise DataError(f"download of {url} is corrupt (sha256 {actual[:12]}..., expected {sha256[:12]}...)")
    return destination


def fetch_chunks(url: str, timeout: float) -> Iterator[bytes]:
    """The bytes at `url`; DownloadInterrupted if a retry may succeed, else DownloadFailed."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(1 << 20):
                yield chunk
    except (OSError, http.client.HTTPException) as error:
        failure = DownloadInterrupted if may_pass(error) else DownloadFailed
        raise failure(f"MNIST could not be downloaded from {url} ({reason(error)}); {LOCAL_FILES_HINT}") from None


def reason(error: Exception) -> object:
    """Why a request failed: a URLError wraps the socket's error (an HTTPError is its own reason)."""
    if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
        return error.reason
    return error


def may_pass(error: Exception) -> bool:
    """Whether a retry may fix a failed request: not when the host's name does not resolve (offline), the
    network is unreachable, the connection is refused, or the server answers that the file is not there."""
    if isinstance(error, urllib.error.HTTPError):
        return error.code == 429 or error.code >= 500
    cause = reason(error)
    unreachable = getattr(cause, "errno", None) in (errno.ENETUNREACH, errno.EHOSTUNREACH)
    return not (unreachable or isinstance(cause, (socket.gaierror, ConnectionRefusedError)))


def file_sha256(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def load(directory: Path | None, download_dir: Path) -> tuple[str, Mnist]:
    """(source, data): the MNIST files in `directory`, else Keras's mnist.npz kept in `download_dir`."""
    if directory:
        return str(directory), read_directory(directory)
    return KERAS_URL, read_npz(download(KERAS_URL, download_dir / "mnist.npz", KERAS_SHA256))
