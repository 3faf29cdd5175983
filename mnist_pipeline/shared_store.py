"""The shared store under MNIST_ARTIFACTS_URL: opening it (with one-line errors for bad settings), the one
write every writer relies on (a whole object, created only if absent), and local copies of its files, fetched
once and verified by digest.

Object stores have no locks, no appends and no atomic renames, but AWS S3 and MinIO (PutObject with
`If-None-Match: *`) and GCS (`ifGenerationMatch=0`) create an object only if absent, in one step: s3fs's and
gcsfs's `pipe_file(mode="create")`. On a local disk (or NFS) the same is a hard link, which fails if the name
exists. Any other fsspec filesystem emulates `mode="create"` by looking first and writing after, which two writers
at once can both pass: such a store is refused unless MNIST_STORE_SINGLE_WRITER says one process alone writes it.
"""

import functools
import json
import os
import re
import shutil
import uuid
from pathlib import Path

import fsspec
from fsspec.core import split_protocol
from fsspec.implementations.local import LocalFileSystem

from mnist_pipeline import settings
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.files import create_new, file_sha256, replacing

RECORD_NAME = re.compile(r"\d{6,}\.json")
SINGLE_WRITER_VARIABLE = "MNIST_STORE_SINGLE_WRITER"
ATOMIC_CREATE_FILESYSTEMS = {"s3fs.core.S3FileSystem", "gcsfs.core.GCSFileSystem"}


class SharedStoreError(PipelineError):
    """MNIST_ARTIFACTS_URL (or MNIST_CACHE_URL) names a store this process cannot use."""


def create_exclusive(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> bool:
    """Write a whole object at `path` unless one exists there: True if this call created it."""
    if isinstance(fs, LocalFileSystem):
        return create_new(path, data)
    try:
        fs.pipe_file(path, data, mode="create")
    except FileExistsError:
        return False
    return True


def creates_atomically(fs: fsspec.AbstractFileSystem) -> bool:
    """Whether `fs` creates an object only if absent in one step, so that of two writers at once one loses."""
    names = {f"{cls.__module__}.{cls.__qualname__}" for cls in type(fs).__mro__}
    return isinstance(fs, LocalFileSystem) or bool(names & ATOMIC_CREATE_FILESYSTEMS)


def single_writer() -> bool:
    """$MNIST_STORE_SINGLE_WRITER: 1 when one process alone writes the store, which then needs no atomic create."""
    value = os.environ.get(SINGLE_WRITER_VARIABLE, "").strip().lower()
    if value not in ("", "0", "1", "false", "true", "no", "yes"):
        raise SharedStoreError(
            f"{SINGLE_WRITER_VARIABLE} {value[:20]!r}: not a yes or no; set it to 1 or 0, or unset it"
        )
    return value in ("1", "true", "yes")


class NumberedRecords:
    """JSON records `000001.json`, `000002.json`, ... in `folder`, each created once: a log that writers on several
    machines extend without a lock. A writer reads the log, decides, and appends after what it read; if another
    writer took that number first, the append fails and the writer reads again and decides again."""

    def __init__(self, fs: fsspec.AbstractFileSystem, folder: str):
        self.fs, self.folder = fs, folder

    def names(self) -> list[str]:
        try:
            names = [name.rsplit("/", 1)[-1] for name in self.fs.ls(self.folder, detail=False)]
        except FileNotFoundError:
            return []
        return sorted((name for name in names if RECORD_NAME.fullmatch(name)), key=lambda name: int(name[:-5]))

    def read(self, name: str) -> dict:
        return json.loads(self.fs.cat_file(f"{self.folder}/{name}"))

    def append(self, record: dict, after: list[str]) -> bool:
        """Create `record` next after the names `after` (as `names()` gave them): False if that number is taken."""
        number = int(after[-1][:-5]) + 1 if after else 1
        data = json.dumps(record, indent=2, default=str).encode()
        return create_exclusive(self.fs, f"{self.folder}/{number:06d}.json", data)


def _problem(error: BaseException) -> tuple[str, str]:
    """(what is wrong, how to fix it) for an error met while opening or probing a store."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    names = {type(cause).__name__ for cause in _causes(error)}
    if isinstance(error, ImportError):
        return f"its filesystem package is missing ({text})", "install the package it names"
    if isinstance(error, ValueError) and "protocol" in text.lower():
        return f"unknown scheme ({text})", "use a local path or an fsspec URL such as s3://bucket/prefix"
    if names & {"NoCredentialsError", "PartialCredentialsError"} or "credentials" in text.lower():
        return "no credentials", "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile, or FSSPEC_S3_*)"
    if isinstance(error, PermissionError) or "AccessDenied" in text or "Forbidden" in text:
        return f"no write permission ({text})", "grant this identity write access to the bucket and prefix"
    if isinstance(error, FileNotFoundError) or "NoSuchBucket" in text:
        return f"the bucket does not exist ({text})", "create it, or fix the bucket's name"
    return f"unreachable ({text})", "check the endpoint (AWS_ENDPOINT_URL), the network and the bucket's name"


def _causes(error: BaseException):
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


@functools.cache
def _checked(url: str, setting: str, one_writer: bool) -> tuple[fsspec.AbstractFileSystem, str]:
    try:
        fs, path = fsspec.core.url_to_fs(url, use_listings_cache=False)  # other machines write there too
    except Exception as error:  # any failure to open the store is a setting to fix
        problem, fix = _problem(error)
        raise SharedStoreError(f"{setting} {url}: {problem}; {fix}") from None
    if not (one_writer or creates_atomically(fs)):
        raise SharedStoreError(
            f"{setting} {url}: {type(fs).__name__} cannot create an object only if it is absent in one step, so two "
            f"writers at once could both win; use s3://, gs:// or a local disk, or set {SINGLE_WRITER_VARIABLE}=1 "
            "if one process alone writes to this store"
        )
    if not (isinstance(fs, LocalFileSystem) or _creates_once(fs, path, url, setting) or one_writer):
        raise SharedStoreError(
            f"{setting} {url}: the store overwrote an object that a create-only-if-absent write (If-None-Match: *) "
            "should have kept, so two writers at once could both win; use a store that honours it (AWS S3, MinIO "
            f"since 2024, GCS), or set {SINGLE_WRITER_VARIABLE}=1 if one process alone writes to this store"
        )
    return fs, path.rstrip("/")


def _creates_once(fs: fsspec.AbstractFileSystem, path: str, url: str, setting: str) -> bool:
    """Writes a probe object and then, create-only-if-absent, another at its name, and removes it: whether the
    second write was refused. A bad setting (no bucket, no credentials, no write permission) fails here."""
    probe = f"{path.rstrip('/')}/.probes/{uuid.uuid4().hex}"
    try:
        fs.pipe_file(probe, b"probe", mode="create")
        try:
            fs.pipe_file(probe, b"again", mode="create")
        except FileExistsError:
            return True
        finally:
            fs.rm_file(probe)
    except Exception as error:  # any failure to write the store is a setting to fix
        problem, fix = _problem(error)
        raise SharedStoreError(f"{setting} {url}: {problem}; {fix}") from None
    return False


def open_store(location: str | os.PathLike, setting: str = settings.ARTIFACTS_URL_VARIABLE):
    """(filesystem, path) of `location`; a remote store is checked once per process (its filesystem must create
    atomically, and a probe object is written, created again, which must fail, and removed), so a bad setting
    fails before anything is written, naming `setting`, the URL and the problem."""
    location = str(location)
    if not settings.is_remote(location):
        fs, path = fsspec.core.url_to_fs(location)
        return fs, path.rstrip("/")
    root = settings.artifacts_url()
    checked = root if location.startswith(f"{root}/") else location  # in the shared root: it is checked, and named
    try:
        fsspec.get_filesystem_class(split_protocol(checked)[0])
    except (ImportError, ValueError) as error:
        problem, fix = _problem(error)
        raise SharedStoreError(f"{setting} {checked}: {problem}; {fix}") from None
    fs, path = _checked(checked, setting, single_writer())
    return fs, (path + location.removeprefix(checked)).rstrip("/")


def fetch_verified(fs: fsspec.AbstractFileSystem, path: str, sha256: str, suffix: str) -> Path:
    """A local copy of the remote file `path`, `settings.fetch_dir()/<sha256><suffix>`: fetched once, checked
    against `sha256` (a damaged local copy is fetched again)."""
    local = settings.fetch_dir() / f"{sha256}{suffix}"
    if local.is_file() and file_sha256(local) == sha256:
        return local
    with replacing(local) as temporary:
        with fs.open(path, "rb") as source, open(temporary, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
        if file_sha256(temporary) != sha256:
            raise SharedStoreError(f"{fs.unstrip_protocol(path)} is corrupt: its content does not match its digest")
    return local
