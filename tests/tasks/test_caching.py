import os

import numpy as np
import pytest
from mnist_pipeline.tasks.caching import VerifiedHandlesSerializer, array_cache_key
from mnist_pipeline.tasks.data import LabeledImages

from mnist_pipeline.arrays import CorruptArrayError, save_array
from mnist_pipeline.errors import PipelineError


class FakeTask:
    name = "reshape_images"


class FakeContext:
    task = FakeTask()


@pytest.fixture
def labeled(tmp_path) -> LabeledImages:
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28, 1)
    return LabeledImages(
        images=save_array(images, tmp_path), labels=save_array(np.eye(10, dtype=np.float32)[:2], tmp_path)
    )


def test_a_record_round_trips_while_its_arrays_are_intact(labeled):
    serializer = VerifiedHandlesSerializer()
    assert serializer.loads(serializer.dumps(labeled)) == labeled


@pytest.mark.parametrize("damage", ["corrupt", "delete"])
def test_a_record_whose_array_changed_cannot_be_loaded(labeled, damage):
    serializer = VerifiedHandlesSerializer()
    blob = serializer.dumps(labeled)
    path = labeled.images.path
    if damage == "delete":
        os.remove(path)
    else:
        with open(path, "r+b") as file:
            file.seek(-1, os.SEEK_END)
            last = file.read(1)[0]
            file.seek(-1, os.SEEK_END)
            file.write(bytes([last ^ 0xFF]))
    with pytest.raises(CorruptArrayError, match=path):
        serializer.loads(blob)


def test_records_of_foreign_types_are_refused():
    blob = b'{"model": "os:system", "value": {}}'
    with pytest.raises(ValueError, match="refusing to load"):
        VerifiedHandlesSerializer().loads(blob)


def test_exceptions_of_failed_runs_are_stored_too():
    serializer = VerifiedHandlesSerializer()
    error = serializer.loads(serializer.dumps(PipelineError("limit must be between 10 and 600")))
    assert isinstance(error, PipelineError) and "limit must be" in str(error)


def test_cache_keys_follow_content_and_parameters_not_paths(labeled, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    moved = labeled.images.model_copy(update={"path": "/elsewhere/same-content.npy"})
    key = array_cache_key(FakeContext(), {"images": labeled.images, "limit": 100, "index": np.arange(5)})
    assert key == array_cache_key(FakeContext(), {"images": moved, "limit": 100, "index": np.arange(5)})
    assert key != array_cache_key(FakeContext(), {"images": labeled.images, "limit": 200, "index": np.arange(5)})
    assert key != array_cache_key(FakeContext(), {"images": labeled.images, "limit": 100, "index": np.arange(6)})
    assert key != array_cache_key(FakeContext(), {"images": labeled.labels, "limit": 100, "index": np.arange(5)})
    monkeypatch.setenv("MNIST_ARTIFACTS_DIR", str(tmp_path / "other-artifacts"))
    assert key != array_cache_key(FakeContext(), {"images": labeled.images, "limit": 100, "index": np.arange(5)})
