"""Result records planted in the shared store run nothing: a pickle, or JSON naming a function, is refused unread,
and the task computes its result again and replaces the record."""

import asyncio
import json
import pathlib
import uuid
from pathlib import Path

import prefect
import pytest
from prefect import flow, task
from prefect.serializers import JSONSerializer, PickleSerializer

from mnist_pipeline import settings
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.files import StoredFile, store_by_digest
from mnist_pipeline.orchestration import caching
from mnist_pipeline.orchestration.result_records import (
    ForeignRecordError,
    TrustedLocalResults,
    VerifiedHandlesSerializer,
    trusted_record,
)


class TouchWhenUnpickled:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def envelope(serializer: dict, payload: bytes) -> bytes:
    """A result record as Prefect writes one: its metadata names the serializer that decodes the payload."""
    metadata = {"storage_key": None, "expiration": None, "serializer": serializer, "storage_block_id": None}
    return json.dumps({"metadata": {**metadata, "prefect_version": prefect.__version__}, "result": payload.decode()})


def running(marker: Path) -> bytes:
    return json.dumps({"__class__": "subprocess.getoutput", "data": [f"touch {marker}"]}).encode()


PLANTED = {
    "pickle": lambda marker: envelope(
        {"type": "pickle", "picklelib": "pickle"},
        PickleSerializer(picklelib="pickle").dumps(TouchWhenUnpickled(marker)),
    ),
    "prefect-json": lambda marker: envelope({"type": "json"}, running(marker)),
    "project-json": lambda marker: envelope({"type": "mnist-verified-handles"}, running(marker)),
}


def test_the_planted_records_are_armed(tmp_path):
    """Read as Prefect reads them on its own, each would run its command."""
    from prefect._internal.result_records import ResultRecord

    for kind in ("pickle", "prefect-json"):
        marker = tmp_path / kind
        ResultRecord.deserialize(PLANTED[kind](marker).encode())
        assert marker.exists(), kind
    JSONSerializer().loads(running(tmp_path / "json"))
    assert (tmp_path / "json").exists()


@pytest.mark.parametrize("kind", ["pickle", "prefect-json"])
def test_a_record_naming_another_serializer_is_refused_unread(tmp_path, kind):
    with pytest.raises(ForeignRecordError, match="names the serializer"):
        trusted_record("results/key", PLANTED[kind](tmp_path / "marker").encode())
    assert not (tmp_path / "marker").exists()


def test_a_record_naming_this_serializer_is_passed_on_as_checked():
    record = envelope({"type": "mnist-verified-handles"}, b'{"digit": 7}')
    assert json.loads(trusted_record("results/key", record.encode())) == json.loads(record)
    with pytest.raises(ForeignRecordError):
        trusted_record("results/key", b"\x80\x04not json")


def test_the_storage_blocks_check_what_they_read_whether_called_sync_or_async(tmp_path):
    block = TrustedLocalResults(basepath=str(tmp_path))
    (tmp_path / "ours").write_text(envelope({"type": "mnist-verified-handles"}, b"{}"))
    (tmp_path / "planted").write_text(PLANTED["pickle"](tmp_path / "marker"))
    assert json.loads(block.read_path("ours", _sync=True))["result"] == "{}"
    assert json.loads(asyncio.run(block.aread_path("ours")))["result"] == "{}"
    with pytest.raises(ForeignRecordError):
        block.read_path("planted", _sync=True)
    with pytest.raises(ForeignRecordError):
        asyncio.run(block.aread_path("planted"))
    assert not (tmp_path / "marker").exists()


def test_plain_json_decodes_without_building_named_types(tmp_path):
    serializer = VerifiedHandlesSerializer()
    assert serializer.loads(b'{"fold": 1, "scores": [0.9, null]}') == {"fold": 1, "scores": [0.9, None]}
    with pytest.raises(ValueError, match="refusing to load a cached result of type subprocess.getoutput"):
        serializer.loads(running(tmp_path / "marker"))
    assert not (tmp_path / "marker").exists()


@pytest.mark.parametrize(
    "name",
    ["mnist_pipeline.orchestration.caching:BaseModel", "mnist_pipeline.settings:os", "mnist_pipeline_x.evil:Model"],
)
def test_a_model_record_must_name_a_model_this_project_defines(name):
    with pytest.raises(ValueError, match="refusing to load"):
        VerifiedHandlesSerializer().loads(json.dumps({"model": name, "value": {}}).encode())


def test_failed_runs_exceptions_come_back_as_their_own_type_only_when_the_project_or_python_defines_it():
    serializer = VerifiedHandlesSerializer()
    assert isinstance(serializer.loads(serializer.dumps(PipelineError("no data"))), PipelineError)
    assert isinstance(serializer.loads(serializer.dumps(KeyError("fold"))), KeyError)
    foreign = serializer.loads(b'{"__exc_type__": "subprocess.CalledProcessError", "message": "touch x"}')
    assert type(foreign) is RuntimeError and str(foreign) == "subprocess.CalledProcessError: touch x"


computed: list[str] = []


@task(cache_key_fn=lambda context, parameters: parameters["key"], persist_result=True)
def store_a_file(key: str, folder: str) -> StoredFile:
    computed.append(key)
    return store_by_digest(Path(folder), ".txt", lambda path: path.write_bytes(b"result"))


@flow
def cached_store(key: str, folder: str, storage: str) -> str:
    caching.save_shared_result_storage()
    cached = store_a_file.with_options(result_storage=storage, result_serializer=VerifiedHandlesSerializer())
    return cached(key, folder, return_state=True).name


def record_path(key: str) -> str:
    return f"{settings.results_url()}/{key}"


@pytest.mark.parametrize("kind", list(PLANTED))
def test_a_planted_record_runs_nothing_and_the_task_computes_again(prefect_server, tmp_path, monkeypatch, kind):
    monkeypatch.setenv("MNIST_ARTIFACTS_URL", str(tmp_path / "shared"))
    key, marker = f"planted-{kind}-{uuid.uuid4().hex}", tmp_path / "marker"
    Path(record_path(key)).parent.mkdir(parents=True)
    Path(record_path(key)).write_text(PLANTED[kind](marker))

    storage = caching.shared_result_storage()
    assert storage.startswith("mnist-local-result-records/")
    assert cached_store(key, str(tmp_path / "files"), storage) == "Completed" and computed.count(key) == 1
    assert not marker.exists()
    assert json.loads(Path(record_path(key)).read_text())["metadata"]["serializer"]["type"] == "mnist-verified-handles"
    assert cached_store(key, str(tmp_path / "files"), storage) == "Cached" and computed.count(key) == 1


def test_a_pickle_planted_in_a_bucket_runs_nothing(prefect_server, s3_bucket, tmp_path, monkeypatch):
    import fsspec

    monkeypatch.setenv("MNIST_ARTIFACTS_URL", f"{s3_bucket}/mnist")
    key, marker = f"planted-{uuid.uuid4().hex}", tmp_path / "marker"
    fsspec.filesystem("s3").pipe_file(record_path(key), PLANTED["pickle"](marker).encode())

    storage = caching.shared_result_storage()
    assert storage.startswith("mnist-remote-result-records/")
    assert cached_store(key, str(tmp_path / "files"), storage) == "Completed" and not marker.exists()
    assert cached_store(key, str(tmp_path / "files"), storage) == "Cached" and computed.count(key) == 1
