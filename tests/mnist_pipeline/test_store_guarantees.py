"""Create-only-if-absent, which the registry and the data store rest on: one winner among writers at once, and a
store that cannot promise it refused at start-up in one line, unless it has a single writer."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from fsspec.implementations.local import LocalFileSystem
from s3fs import S3FileSystem

from mnist_pipeline import shared_store
from mnist_pipeline.flows.cli import main
from mnist_pipeline.shared_store import SharedStoreError, create_exclusive, open_store


def one_line_error(capsys) -> str:
    shared_store._checked.cache_clear()
    assert main(["models"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1, error
    return error


@pytest.fixture
def memory_store(monkeypatch, artifacts_dir) -> str:
    url = f"memory://mnist-{uuid.uuid4().hex}"
    monkeypatch.setenv("MNIST_ARTIFACTS_URL", url)
    monkeypatch.delenv("MNIST_STORE_SINGLE_WRITER", raising=False)
    return url


def test_a_filesystem_without_an_atomic_create_is_refused_in_one_line_naming_the_url(memory_store, capsys):
    error = one_line_error(capsys)
    assert error.startswith(f"mnist-pipeline models: error: MNIST_ARTIFACTS_URL {memory_store}: MemoryFileSystem")
    assert "two writers at once could both win" in error and "MNIST_STORE_SINGLE_WRITER=1" in error


def test_the_single_writer_setting_accepts_it(memory_store, monkeypatch, capsys):
    monkeypatch.setenv("MNIST_STORE_SINGLE_WRITER", "1")
    shared_store._checked.cache_clear()
    assert main(["models", "--json"]) == 0 and capsys.readouterr().out.strip() == "[]"
    fs, path = open_store(memory_store)
    assert create_exclusive(fs, f"{path}/record.json", b"first")
    assert not create_exclusive(fs, f"{path}/record.json", b"second")


def test_a_single_writer_setting_that_is_not_a_yes_or_no_gets_one_line(memory_store, monkeypatch, capsys):
    monkeypatch.setenv("MNIST_STORE_SINGLE_WRITER", "perhaps")
    error = one_line_error(capsys)
    assert "MNIST_STORE_SINGLE_WRITER 'perhaps': not a yes or no; set it to 1 or 0, or unset it" in error


def test_an_s3_store_that_ignores_if_none_match_is_refused(s3_bucket, monkeypatch, artifacts_dir, capsys):
    """As an S3-compatible store without conditional writes would: the second create overwrites the first."""
    pipe_file = S3FileSystem._pipe_file

    async def overwriting_pipe_file(self, path, data, mode="overwrite", **kwargs):
        return await pipe_file(self, path, data, **kwargs)

    monkeypatch.setattr(S3FileSystem, "_pipe_file", overwriting_pipe_file)
    S3FileSystem.clear_instance_cache()
    monkeypatch.setenv("MNIST_ARTIFACTS_URL", f"{s3_bucket}/mnist")
    try:
        error = one_line_error(capsys)
    finally:
        S3FileSystem.clear_instance_cache()
    assert error.startswith(f"mnist-pipeline models: error: MNIST_ARTIFACTS_URL {s3_bucket}/mnist: the store overwrote")


def race(create, writers: int = 8) -> list[bool]:
    """`create(data)` from `writers` threads released at once, each with its own data: what each returned."""
    barrier = threading.Barrier(writers)

    def writer(number: int) -> bool:
        barrier.wait()
        return create(f"writer {number}".encode())

    with ThreadPoolExecutor(writers) as pool:
        return list(pool.map(writer, range(writers)))


def assert_one_winner(fs, path: str, results: list[bool]) -> None:
    assert results.count(True) == 1, results
    assert fs.cat_file(path) == f"writer {results.index(True)}".encode()


def test_of_concurrent_creators_on_a_local_disk_exactly_one_wins(tmp_path):
    fs = LocalFileSystem()
    for round_number in range(20):
        path = f"{tmp_path}/records/{round_number:06d}.json"
        assert_one_winner(fs, path, race(lambda data, path=path: create_exclusive(fs, path, data)))
    assert len(list((tmp_path / "records").iterdir())) == 20, "no temporary left"


def test_of_concurrent_creators_on_s3_exactly_one_wins(s3_bucket, artifacts_dir, monkeypatch):
    monkeypatch.setenv("MNIST_ARTIFACTS_URL", f"{s3_bucket}/mnist")
    shared_store._checked.cache_clear()
    fs, root = open_store(f"{s3_bucket}/mnist")
    for round_number in range(5):
        path = f"{root}/records/{round_number:06d}.json"
        assert_one_winner(fs, path, race(lambda data, path=path: create_exclusive(fs, path, data)))


def test_a_refused_store_names_the_fix_in_the_error():
    with pytest.raises(SharedStoreError, match="memory://elsewhere: MemoryFileSystem cannot create"):
        shared_store._checked("memory://elsewhere", "MNIST_ARTIFACTS_URL", False)
