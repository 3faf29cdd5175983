"""Content-addressed `.npy` files and the small handles that stand for them between tasks."""

import hashlib
import os
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from mnist_pipeline.files import replacing


class CorruptArrayError(ValueError):
    """A cached array file is missing or its content no longer matches its digest."""


def array_sha256(array: np.ndarray) -> str:
    """Digest of an array's dtype, shape and bytes."""
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


class ArrayHandle(BaseModel):
    """A saved array: its file and digest. Cheap to pickle, hash and log; `open` verifies it."""

    model_config = ConfigDict(frozen=True)

    path: str
    sha256: str
    shape: tuple[int, ...]
    dtype: str

    def open(self) -> np.ndarray:
        """The array, memory-mapped read-only (processes share its pages); CorruptArrayError if changed."""
        try:
            stamp = _stamp(self.path)
            array = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise CorruptArrayError(f"cached array {self.path} is missing") from None
        except ValueError as error:
            raise CorruptArrayError(f"cached array {self.path} is unreadable ({error})") from None
        if _verified.get(self.path) != (stamp, self.sha256) and array_sha256(array) != self.sha256:
            raise CorruptArrayError(f"cached array {self.path} is corrupt: its content no longer matches its digest")
        _verified[self.path] = (stamp, self.sha256)
        return array

    def verify(self) -> None:
        self.open()


# Files verified in this process, with their (size, mtime, inode): rewriting a file changes these.
_verified: dict[str, tuple[tuple[int, int, int], str]] = {}


def _stamp(path: str) -> tuple[int, int, int]:
    status = os.stat(path)
    return status.st_size, status.st_mtime_ns, status.st_ino


def save_array(array: np.ndarray, directory: str | os.PathLike) -> ArrayHandle:
    """Write `array` to `directory/<sha256>.npy` atomically and return its handle."""
    sha256 = array_sha256(array)
    path = Path(directory) / f"{sha256}.npy"
    with replacing(path) as temporary:
        with open(temporary, "wb") as file:
            np.save(file, array, allow_pickle=False)
    return ArrayHandle(path=str(path), sha256=sha256, shape=array.shape, dtype=array.dtype.str)
