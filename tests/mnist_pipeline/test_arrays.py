import os

import numpy as np
import pytest

from mnist_pipeline import settings
from mnist_pipeline.arrays import ArrayHandle, CorruptArrayError, array_sha256, save_array
from mnist_pipeline.errors import PipelineError


@pytest.mark.parametrize(
    "array",
    [
        np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
        np.linspace(-1, 1, 10, dtype=np.float32),
        np.array([[3, -7], [2**40, 0]], dtype=np.int64),
    ],
    ids=["uint8-3d", "float32-1d", "int64-2d"],
)
def test_save_and_open_round_trip_memory_mapped_read_only(tmp_path, array):
    handle = save_array(array, tmp_path)
    loaded = handle.open()
    assert loaded.dtype == array.dtype and loaded.shape == array.shape
    np.testing.assert_array_equal(loaded, array)
    assert isinstance(loaded, np.memmap)
    assert not loaded.flags.writeable
    assert handle.shape == array.shape and handle.dtype == array.dtype.str
    assert handle.path == str(tmp_path / f"{handle.sha256}.npy")


def test_handles_are_content_addressed(tmp_path):
    array = np.arange(100, dtype=np.int32)
    first = save_array(array, tmp_path)
    again = save_array(array.copy(), tmp_path)
    other = save_array(array + 1, tmp_path)
    same_bytes_other_shape = save_array(array.reshape(10, 10), tmp_path)
    assert first == again
    assert len({first.path, other.path, same_bytes_other_shape.path}) == 3
    assert len(list(tmp_path.glob("*.npy"))) == 3
    assert not list(tmp_path.glob(".*"))  # no temporaries left behind


def test_digest_covers_dtype_not_just_bytes():
    assert array_sha256(np.zeros(4, np.int32)) != array_sha256(np.zeros(2, np.int64))


def test_handle_survives_a_pickle_like_round_trip(tmp_path):
    handle = save_array(np.eye(3), tmp_path)
    copy = ArrayHandle.model_validate_json(handle.model_dump_json())
    np.testing.assert_array_equal(copy.open(), np.eye(3))


def _flip_last_bytes(path, count=4):
    with open(path, "r+b") as file:
        file.seek(-count, os.SEEK_END)
        tail = file.read(count)
        file.seek(-count, os.SEEK_END)
        file.write(bytes(b ^ 0xFF for b in tail))


def test_corrupted_data_raises_naming_the_path(tmp_path):
    handle = save_array(np.arange(1000, dtype=np.float64), tmp_path)
    _flip_last_bytes(handle.path)
    with pytest.raises(CorruptArrayError, match="corrupt") as error:
        handle.open()
    assert handle.path in str(error.value)
    with pytest.raises(CorruptArrayError):
        handle.verify()


def test_deleted_file_raises_naming_the_path(tmp_path):
    handle = save_array(np.arange(10), tmp_path)
    os.remove(handle.path)
    with pytest.raises(CorruptArrayError, match="missing") as error:
        handle.open()
    assert handle.path in str(error.value)


def test_unreadable_file_raises_naming_the_path(tmp_path):
    handle = save_array(np.arange(10), tmp_path)
    with open(handle.path, "wb") as file:
        file.write(b"not an npy file at all")
    with pytest.raises(CorruptArrayError, match="unreadable") as error:
        handle.open()
    assert handle.path in str(error.value)


def test_in_place_rewrite_after_a_successful_open_is_detected(tmp_path):
    handle = save_array(np.arange(1000, dtype=np.int64), tmp_path)
    handle.open()  # verified and memoized for this process
    _flip_last_bytes(handle.path)  # same size, same inode: only the mtime changes
    with pytest.raises(CorruptArrayError, match="corrupt"):
        handle.open()


def test_replacement_by_another_file_after_a_successful_open_is_detected(tmp_path):
    handle = save_array(np.arange(1000, dtype=np.int64), tmp_path)
    handle.open()
    impostor = save_array(np.arange(1000, dtype=np.int64)[::-1].copy(), tmp_path / "other")
    os.replace(impostor.path, handle.path)  # same size, different content and inode
    with pytest.raises(CorruptArrayError, match="corrupt"):
        handle.open()


@pytest.fixture
def remote(monkeypatch, tmp_path):
    """An fsspec memory:// cache URL, and this process's local folder for fetched copies."""
    import fsspec

    monkeypatch.setenv("MNIST_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    url = f"memory://cache-{tmp_path.name}"
    yield url, tmp_path / "artifacts" / "fetched"
    fsspec.filesystem("memory").rm(url, recursive=True)


def test_an_array_saved_to_a_url_is_fetched_once_by_digest_then_memory_mapped(remote):
    import fsspec

    url, fetched = remote
    array = np.arange(3000, dtype=np.float32).reshape(3, 1000)
    handle = save_array(array, url)
    assert handle.path == f"{url}/{handle.sha256}.npy"
    assert fsspec.filesystem("memory").exists(handle.path)
    (fetched / f"{handle.sha256}.npy").unlink()  # as on a worker that has never seen it

    loaded = handle.open()
    assert isinstance(loaded, np.memmap) and not loaded.flags.writeable
    np.testing.assert_array_equal(loaded, array)
    assert sorted(path.name for path in fetched.iterdir()) == [f"{handle.sha256}.npy"]
    fsspec.filesystem("memory").rm(handle.path)
    np.testing.assert_array_equal(handle.open(), array)  # the local copy: not fetched again


def test_a_damaged_local_copy_is_fetched_again(remote):
    url, fetched = remote
    handle = save_array(np.arange(1000, dtype=np.int64), url)
    _flip_last_bytes(fetched / f"{handle.sha256}.npy")
    np.testing.assert_array_equal(handle.open(), np.arange(1000))


@pytest.mark.parametrize("damage", ["corrupt", "delete"])
def test_a_damaged_remote_array_raises_naming_the_url(remote, damage):
    import fsspec

    url, fetched = remote
    handle = save_array(np.arange(1000, dtype=np.int64), url)
    (fetched / f"{handle.sha256}.npy").unlink()
    memory = fsspec.filesystem("memory")
    if damage == "delete":
        memory.rm(handle.path)
    else:
        memory.pipe(handle.path, memory.cat(handle.path)[:-8] + b"\xff" * 8)
    with pytest.raises(CorruptArrayError, match="missing" if damage == "delete" else "corrupt") as error:
        handle.open()
    assert handle.path in str(error.value)


def test_verify_notices_a_deleted_remote_array_even_with_a_local_copy(remote):
    import fsspec

    url, _ = remote
    handle = save_array(np.arange(10), url)
    handle.verify()
    fsspec.filesystem("memory").rm(handle.path)
    with pytest.raises(CorruptArrayError, match=f"{handle.path} is missing"):
        handle.verify()


@pytest.mark.parametrize("cache_url", [None, "/proc/nope/cache"])
def test_a_cache_that_cannot_be_written_names_its_setting(monkeypatch, cache_url):
    monkeypatch.setenv("MNIST_ARTIFACTS_DIR", "/proc/nope")
    if cache_url:
        monkeypatch.setenv("MNIST_CACHE_URL", cache_url)
    else:
        monkeypatch.delenv("MNIST_CACHE_URL", raising=False)
    with pytest.raises(PipelineError) as error:
        save_array(np.zeros(3), settings.cache_url())
    setting = "MNIST_CACHE_URL" if cache_url else "MNIST_ARTIFACTS_DIR"
    assert str(error.value) == (
        f"{setting} /proc/nope/cache: cannot write the array cache (No such file or directory); "
        "set it to a writable folder with free space"
    )
