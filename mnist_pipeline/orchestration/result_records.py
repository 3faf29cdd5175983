"""The result records of cached tasks, read as data only: whoever can write to the result storage (a shared bucket's
`results/`) must not be able to run code on the machines that read it.

Prefect decodes a record with the serializer the record itself names, already when it checks that a cached result
exists: a record naming `pickle` runs whatever its payload says. So the storage blocks here hand Prefect only
records that name this project's serializer, and that serializer builds only this project's pydantic models and
exceptions. Any other record is refused before it is decoded; Prefect treats the refusal as a cache miss, so the
task runs again and its new record replaces the refused one.
"""

import builtins
import importlib
import json
import logging
from typing import Any

from prefect._internal.compatibility.async_dispatch import async_dispatch
from prefect.filesystems import LocalFileSystem, RemoteFileSystem
from prefect.serializers import JSONSerializer, Serializer
from pydantic import BaseModel, Field

from mnist_pipeline.arrays import ArrayHandle
from mnist_pipeline.files import StoredFile

PROJECT_PACKAGE = "mnist_pipeline"
SERIALIZER_TYPE = "mnist-verified-handles"
logger = logging.getLogger(__name__)


class ForeignRecordError(ValueError):
    """A result record this project did not write: read as a cache miss."""


def _handles(value: Any):
    if isinstance(value, (ArrayHandle, StoredFile)):
        yield value
    elif isinstance(value, BaseModel):
        for _, item in value:
            yield from _handles(item)


def _project_class(name: str, base: type) -> type:
    """The class `module:qualname` (or `module.qualname`) if this project defines it as a subclass of `base`."""
    module, _, qualname = name.partition(":") if ":" in name else name.rpartition(".")
    if module.split(".")[0] == PROJECT_PACKAGE:
        try:
            found = getattr(importlib.import_module(module), qualname, None)
        except ImportError:
            found = None
        if isinstance(found, type) and issubclass(found, base) and found.__module__ == module:
            return found
    raise ForeignRecordError(f"refusing to load a cached result of type {name}")


def _exception(name: str, message: str) -> Exception:
    """A failed run's exception: of its own type if it is this project's or Python's, else a RuntimeError naming it."""
    module, _, qualname = name.rpartition(".")
    found = getattr(builtins, qualname, None) if module == "builtins" else None
    if found is None and module.split(".")[0] == PROJECT_PACKAGE:
        try:
            found = _project_class(name, Exception)
        except ForeignRecordError:
            found = None
    if isinstance(found, type) and issubclass(found, Exception):
        try:
            return found(message)
        except TypeError:  # an exception whose constructor takes more than a message
            pass
    return RuntimeError(f"{name}: {message}")


def _plain_json(record: dict) -> Any:
    """`json` object hook: Prefect's encoding of an exception becomes one; any other encoded type is refused."""
    if "__exc_type__" in record:
        return _exception(str(record["__exc_type__"]), str(record.get("message", "")))
    if "__class__" in record:
        raise ForeignRecordError(f"refusing to load a cached result of type {record['__class__']}")
    return record


class VerifiedHandlesSerializer(Serializer):
    """JSON of a pydantic model from this project; loading verifies every array and stored file it names.

    Anything else (the exception of a failed run) is written as Prefect's JSON serializer does, and read back as
    plain JSON, with exceptions only of this project's or Python's own types.
    """

    type: str = Field(default=SERIALIZER_TYPE, frozen=True)

    def dumps(self, obj: Any) -> bytes:
        if not isinstance(obj, BaseModel):
            return JSONSerializer().dumps(obj)
        model = f"{type(obj).__module__}:{type(obj).__qualname__}"
        return json.dumps({"model": model, "value": obj.model_dump(mode="json")}).encode()

    def loads(self, blob: bytes) -> Any:
        record = json.loads(blob, object_hook=_plain_json)
        if not (isinstance(record, dict) and "model" in record):
            return record
        value = _project_class(str(record["model"]), BaseModel).model_validate(record["value"])
        for handle in _handles(value):
            handle.verify()
        return value


def trusted_record(path: str, content: bytes) -> bytes:
    """`content` re-encoded exactly as checked, if it is a result record naming this project's serializer."""
    try:
        record = json.loads(content)
    except ValueError:
        record = None
    metadata = record.get("metadata", record) if isinstance(record, dict) else None  # old records: at the top
    serializer = metadata.get("serializer") if isinstance(metadata, dict) else None
    named = serializer.get("type") if isinstance(serializer, dict) else None
    if named != SERIALIZER_TYPE:
        logger.warning("refused the result record %s: it names the serializer %r, not %r", path, named, SERIALIZER_TYPE)
        raise ForeignRecordError(f"result record {path} names the serializer {named!r}, not {SERIALIZER_TYPE!r}")
    return json.dumps(record).encode()


class TrustedReads:
    """Reads of a Prefect file system block that pass only records of this project's serializer."""

    async def aread_path(self, path: str) -> bytes:
        return trusted_record(path, await super().aread_path(path))

    @async_dispatch(aread_path)
    def read_path(self, path: str) -> bytes:
        return trusted_record(path, super().read_path(path, _sync=True))


class TrustedLocalResults(TrustedReads, LocalFileSystem):
    """Prefect's local result storage, reading only records of this project's serializer."""

    _block_type_name = "MNIST Local Result Records"


class TrustedRemoteResults(TrustedReads, RemoteFileSystem):
    """Prefect's fsspec result storage, reading only records of this project's serializer."""

    _block_type_name = "MNIST Remote Result Records"
