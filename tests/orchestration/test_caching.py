import importlib
import inspect
import os
import pkgutil
from types import SimpleNamespace

import numpy as np
import pytest
from prefect import Task

import mnist_pipeline
import mnist_pipeline.flows
import mnist_pipeline.orchestration
import mnist_pipeline.tasks
from mnist_pipeline import source_digest
from mnist_pipeline.arrays import CorruptArrayError, save_array
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.files import ChangedFileError, store_by_digest
from mnist_pipeline.orchestration.caching import VerifiedHandlesSerializer, array_cache_key
from mnist_pipeline.tasks.data import LabeledImages
from mnist_pipeline.tasks.members import TrainedMember


class FakeTask:
    name = "reshape_images"
    fn = staticmethod(save_array)


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


def test_a_member_record_whose_model_file_is_gone_cannot_be_loaded(tmp_path):
    stored = store_by_digest(tmp_path, ".keras", lambda path: path.write_bytes(b"weights"))
    member = TrainedMember(member=1, model=stored, history={"loss": [0.1]}, seconds=1.0, worker="host:1")
    serializer = VerifiedHandlesSerializer()
    assert serializer.loads(serializer.dumps(member)) == member
    os.remove(stored.path)
    with pytest.raises(ChangedFileError, match=stored.path):
        serializer.loads(serializer.dumps(member))


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


def project_modules() -> set[str]:
    packages = (mnist_pipeline, mnist_pipeline.orchestration, mnist_pipeline.flows, mnist_pipeline.tasks)
    return {package.__name__ for package in packages} | {
        info.name for package in packages for info in pkgutil.iter_modules(package.__path__, package.__name__ + ".")
    }


def cached_tasks() -> list[Task]:
    """Every task of the package whose results are cached across runs."""
    modules = [
        importlib.import_module(name) for name in sorted(project_modules()) if name.startswith("mnist_pipeline.tasks.")
    ]
    return [
        value
        for module in modules
        for value in vars(module).values()
        if isinstance(value, Task)
        and value.fn.__module__ == module.__name__
        and isinstance(value.result_serializer, VerifiedHandlesSerializer)
    ]


def cache_key(task: Task) -> str:
    return task.cache_key_fn(SimpleNamespace(task=task), dict.fromkeys(inspect.signature(task.fn).parameters))


@pytest.fixture
def edit(monkeypatch):
    """`edit(module, text)` appends `text` to the module's source as the cache keys read it."""
    read_source, edits = source_digest.read_source, {}
    monkeypatch.setattr(source_digest, "read_source", lambda module: read_source(module) + edits.get(module, b""))

    def edit_module(module: str, text: str = "\n# edited\n") -> None:
        edits[module] = text.encode()
        source_digest.code_version.cache_clear()

    source_digest.code_version.cache_clear()
    yield edit_module
    source_digest.code_version.cache_clear()


def test_editing_any_module_a_cached_task_depends_on_changes_its_key(edit):
    tasks = cached_tasks()
    assert {"download_mnist", "train_fold"} <= {task.name for task in tasks}
    dependencies = {task.name: source_digest.module_dependencies(task.fn.__module__) for task in tasks}
    assert "mnist_pipeline.splits" in set().union(*dependencies.values())  # the stratified subset
    assert "mnist_pipeline.training" in dependencies["train_fold"]  # imported inside the task's function
    for task in tasks:
        key = cache_key(task)
        assert key == cache_key(task)
        for module in dependencies[task.name]:
            edit(module)
            assert cache_key(task) != key, f"editing {module} left {task.name}'s key unchanged"
            edit(module, "")


def test_editing_a_module_no_cached_task_imports_keeps_every_key(edit):
    tasks = cached_tasks()
    dependencies = set().union(*(source_digest.module_dependencies(task.fn.__module__) for task in tasks))
    unrelated = project_modules() - dependencies
    assert {"mnist_pipeline.flows.cli", "mnist_pipeline.reports"} <= unrelated
    keys = [cache_key(task) for task in tasks]
    for module in unrelated:
        edit(module)
    assert [cache_key(task) for task in tasks] == keys


def test_a_module_newly_imported_by_a_task_joins_its_key(edit):
    task = next(task for task in cached_tasks() if task.name == "train_fold")
    edit(task.fn.__module__, "\nfrom mnist_pipeline import reports\n")
    key = cache_key(task)
    edit("mnist_pipeline.reports")
    assert cache_key(task) != key
