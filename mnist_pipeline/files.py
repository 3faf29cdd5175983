"""Atomic file replacement (a reader sees the old file or the new one, never half of one), files created only if
absent, and files stored under the digest of their content."""

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from mnist_pipeline.errors import PipelineError


@contextmanager
def temporary_beside(path: Path) -> Iterator[Path]:
    """A new empty file in `path`'s folder (created if missing), with `path`'s suffix, removed after the block
    unless moved away."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}"
    )  # savers that go by the suffix see it
    os.close(descriptor)
    temporary = Path(name)
    try:
        yield temporary
    finally:
        temporary.unlink(missing_ok=True)


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path`; it replaces `path` if the block succeeds, else is removed."""
    with temporary_beside(Path(path)) as temporary:
        yield temporary
        os.replace(temporary, path)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with replacing(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def write_json(path: str | os.PathLike, value) -> Path:
    return write_bytes(path, json.dumps(value, indent=2, default=str).encode())


def create_new(path: str | os.PathLike, data: bytes) -> bool:
    """Write `data` at `path` unless a file is there: True if this call created it. Of writers racing for one name
    (threads, processes, machines on one NFS export) exactly one wins, and none sees half a file: the data is
    written and synced under a temporary name, then hard-linked into place (a link fails if the name exists), and
    the folder is synced so that the new name survives a crash."""
    path = Path(path)
    with temporary_beside(path) as temporary:
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
    _sync_folder(path.parent)
    return True


def _sync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class ChangedFileError(PipelineError):
    """A stored file is missing or its content no longer matches its digest."""


class StoredFile(BaseModel):
    """A file named by the SHA-256 of its content; `verify` checks it is still there, unchanged."""

    model_config = ConfigDict(frozen=True)

    path: str
    sha256: str

    def verify(self) -> None:
        if not Path(self.path).is_file() or file_sha256(self.path) != self.sha256:
            raise ChangedFileError(f"stored file {self.path} is missing or changed")


def file_sha256(path: str | os.PathLike) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def store_by_digest(directory: Path, suffix: str, write: Callable[[Path], Any]) -> StoredFile:
    """What `write(path)` writes, stored whole in `directory` as `<sha256><suffix>`."""
    with temporary_beside(directory / f"new{suffix}") as temporary:
        write(temporary)
        digest = file_sha256(temporary)
        path = directory / f"{digest}{suffix}"
        os.replace(temporary, path)
    return StoredFile(path=str(path), sha256=digest)
