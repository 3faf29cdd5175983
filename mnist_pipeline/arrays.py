"""Content-addressed `.npy` files and the small handles that stand for them between tasks.

A handle's path is a local file, or an fsspec URL (`s3://bucket/cache/<sha256>.npy`) when the cache
is remote: a process then fetches the file once, by digest, into its local `settings.fetch_dir()`
and opens that copy memory-mapped. Either way the content is checked against the digest.
"""

import hashlib
import os
import shutil
from pathlib import Path

import fsspec
import numpy as np
from pydantic import BaseModel, ConfigDict

from mnist_pipeline import settings
from mnist_pipeline.errors import PipelineError, naming_the_setting
from mnist_pipeline.files import replacing

MISSING_HINT = "; if this process runs on another machine, set MNIST_CACHE_URL to a location every worker can reach"


class CorruptArrayError(PipelineError):
    """A cached array file is missing or its content no longer matches its digest."""


def array_sha256(array: np.ndarray) -> str:
    """Digest of an array's dtype, shape and bytes."""
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


class ArrayHandle(BaseModel):
    """A saved array: its file or URL and digest. Cheap to pickle, hash and log; `open` verifies it."""

    model_config = ConfigDict(frozen=True)

    path: str
    sha256: str
    shape: tuple[int, ...]
    dtype: str

    def open(self) -> np.ndarray:
        """The array, memory-mapped read-only (processes share its pages); CorruptArrayError if changed."""
        if not settings.is_remote(self.path):
            return _open_verified(self.path, self.sha256, self.path)
        local = settings.fetch_dir() / f"{self.sha256}.npy"
        if local.exists():
            try:
                return _open_verified(str(local), self.sha256, self.path)
            except CorruptArrayError:
                pass  # a damaged local copy: fetch it again
        _fetch(self.path, local)
        return _open_verified(str(local), self.sha256, self.path)

    def verify(self) -> None:
        self.open()
        if settings.is_remote(self.path):
            filesystem, path = fsspec.core.url_to_fs(self.path)
            if not filesystem.exists(path):
                raise CorruptArrayError(f"cached array {self.path} is missing")


# Files verified in this process, with their (size, mtime, inode): rewriting a file changes these.
_verified: dict[str, tuple[tuple[int, int, int], str]] = {}


def _stamp(path: str) -> tuple[int, int, int]:
    status = os.stat(path)
    return status.st_size, status.st_mtime_ns, status.st_ino


def _open_verified(path: str, sha256: str, name: str) -> np.ndarray:
    """The `.npy` file at local `path`, memory-mapped, if its content has digest `sha256`."""
    try:
        stamp = _stamp(path)
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise CorruptArrayError(f"cached array {name} is missing{MISSING_HINT}") from None
    except ValueError as error:
        raise CorruptArrayError(f"cached array {name} is unreadable ({error})") from None
    if _verified.get(path) != (stamp, sha256) and array_sha256(array) != sha256:
        raise CorruptArrayError(f"cached array {name} is corrupt: its content no longer matches its digest")
    _verified[path] = (stamp, sha256)
    return array


def _fetch(url: str, local: Path) -> None:
    try:
        with replacing(local) as temporary, fsspec.open(url, "rb") as source, open(temporary, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
    except FileNotFoundError:
        raise CorruptArrayError(f"cached array {url} is missing") from None


def save_array(array: np.ndarray, location: str | os.PathLike) -> ArrayHandle:
    """Write `array` as `<sha256>.npy` into the folder or fsspec URL `location`; return its handle.

    Local files are replaced atomically. For a URL, the file is also kept in `settings.fetch_dir()`,
    so that this process opens it without fetching it back.
    """
    sha256 = array_sha256(array)
    name = f"{sha256}.npy"
    location = str(location)
    remote = settings.is_remote(location)
    path = settings.fetch_dir() / name if remote else Path(location) / name
    with naming_the_setting(
        settings.cache_setting(),
        location,
        "cannot write the array cache",
        "set it to a writable folder with free space",
    ):
        with replacing(path) as temporary:
            with open(temporary, "wb") as file:
                np.save(file, array, allow_pickle=False)
        if remote:
            url = f"{location.rstrip('/')}/{name}"
            filesystem, remote_path = fsspec.core.url_to_fs(url)
            filesystem.put_file(str(path), remote_path)
            path = url
    return ArrayHandle(path=str(path), sha256=sha256, shape=array.shape, dtype=array.dtype.str)
