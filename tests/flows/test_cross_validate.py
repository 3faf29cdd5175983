import json
import os
import uuid

import numpy as np
import pytest
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter
from prefect.exceptions import ParameterTypeError
from prefect.task_runners import ProcessPoolTaskRunner

from mnist_pipeline.arrays import array_sha256
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.flows.cross_validate import cross_validate
from mnist_pipeline.splits import kfold_indices

DATA_TASKS = ("download_mnist", "take_stratified_subset", "reshape_images", "one_hot_labels", "normalize_images")


def run(**parameters):
    """Run the flow; return its summary and {task name: [state names]}."""
    state = cross_validate(return_state=True, **parameters)
    summary = state.result()
    with get_client(sync_client=True) as client:
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [state.state_details.flow_run_id]}))
        artifacts = client.read_artifacts()
    states: dict[str, list[str]] = {}
    for task_run in task_runs:
        states.setdefault(task_run.task_key.rsplit("-", 1)[0], []).append(task_run.state.name)
    run_artifacts = [a for a in artifacts if a.flow_run_id == state.state_details.flow_run_id]
    return summary, states, run_artifacts


@pytest.fixture
def quick(mnist_dir, tmp_path):
    return {"folds": 2, "epochs": 1, "limit": 600, "seed": 3, "data_dir": str(mnist_dir)}


def test_cross_validation_end_to_end_then_cached_then_repaired(
    prefect_server, artifacts_dir, quick, tmp_path, monkeypatch
):
    output = tmp_path / "first"
    summary, states, artifacts = run(**quick, scaling="standardize", output_dir=str(output))

    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["params"]["folds"] == 2 and metrics["params"]["scaling"] == "standardize"
    assert [fold["fold"] for fold in metrics["folds"]] == [1, 2]
    accuracies = [fold["accuracy"] for fold in metrics["folds"]]
    assert accuracies == [fold["history"]["val_accuracy"][-1] for fold in metrics["folds"]]
    assert metrics["mean"] == pytest.approx(np.mean(accuracies)) and metrics["std"] == pytest.approx(np.std(accuracies))
    assert metrics["n"] == 2 and summary.accuracies == accuracies
    assert all(0.2 < accuracy <= 1 for accuracy in accuracies)  # ten SGD steps already beat chance (0.1)
    for fold in metrics["folds"]:
        assert set(fold["history"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        assert fold["seconds"] > 0
    for name in ("learning_curves.png", "accuracy_boxplot.png", "sample_images.png"):
        assert (output / name).read_bytes().startswith(b"\x89PNG")

    workers = {fold["worker"] for fold in metrics["folds"]}
    pids = {int(worker.rsplit(":", 1)[1]) for worker in workers}
    assert len(pids) == 2 and os.getpid() not in pids, "folds must train in distinct worker processes"

    # Scaling statistics come from each fold's training rows only.
    images = np.load(next(iter(_arrays_with_dtype(artifacts_dir, np.uint8, ndim=4))))
    for fold, (train_index, _) in zip(metrics["folds"], kfold_indices(len(images), 2, quick["seed"])):
        mean, std = fold["scaling"][1:]
        assert mean == pytest.approx(images[train_index].mean() / 255)
        assert std == pytest.approx(images[train_index].std() / 255)
    assert metrics["folds"][0]["scaling"] != metrics["folds"][1]["scaling"]

    assert {artifact.key for artifact in artifacts} >= {"cross-validation-summary", "cross-validation-folds"}
    markdown = next(a for a in artifacts if a.key == "cross-validation-summary").data
    assert "data:image/png;base64," in markdown and "Accuracy: mean=" in markdown

    assert {state for name in DATA_TASKS for state in states[name]} == {"Completed"}
    assert states["train_fold"] == ["Completed", "Completed"]

    pools = []
    enter = ProcessPoolTaskRunner.__enter__
    monkeypatch.setattr(ProcessPoolTaskRunner, "__enter__", lambda runner: pools.append(runner) or enter(runner))
    _, states, _ = run(**quick, scaling="standardize", output_dir=str(tmp_path / "second"))
    for name in DATA_TASKS:
        assert set(states[name]) == {"Cached"}, f"{name} should be Cached on a re-run, was {states[name]}"
    assert states["train_fold"] == ["Cached", "Cached"] and not pools, "cached folds need no fold processes"

    float_arrays = list(_arrays_with_dtype(artifacts_dir, np.float32, ndim=4))
    assert len(float_arrays) == 2  # one standardized copy per fold
    corrupted, deleted = float_arrays
    with open(corrupted, "r+b") as file:
        file.seek(-100, os.SEEK_END)
        file.write(b"\xff" * 100)
    deleted.unlink()
    _, states, _ = run(**quick, scaling="standardize", output_dir=str(tmp_path / "third"))
    assert sorted(states["normalize_images"]) == ["Completed", "Completed"]
    assert set(states["download_mnist"]) == {"Cached"}
    for path in (corrupted, deleted):
        assert array_sha256(np.load(path)) == path.stem, f"{path.name} was not rewritten"
    second = json.loads((tmp_path / "second" / "metrics.json").read_text())
    third = json.loads((tmp_path / "third" / "metrics.json").read_text())
    assert [f["accuracy"] for f in third["folds"]] == [f["accuracy"] for f in second["folds"]]


def _arrays_with_dtype(artifacts_dir, dtype, ndim):
    for path in sorted((artifacts_dir / "cache").glob("*.npy")):
        array = np.load(path, mmap_mode="r")
        if array.dtype == dtype and array.ndim == ndim:
            yield path


def _is_scaled_images(array):
    return array.dtype == np.float32 and array.ndim == 4


def test_thread_runner_trains_in_the_flow_process(prefect_server, artifacts_dir, quick, tmp_path):
    summary, states, _ = run(**quick, runner="thread", output_dir=str(tmp_path / "out"))
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert {int(fold["worker"].rsplit(":", 1)[1]) for fold in metrics["folds"]} == {os.getpid()}
    assert summary.n == 2


def test_the_improved_preset_cross_validates_with_its_own_epochs_and_learning_rate(
    prefect_server, artifacts_dir, quick, tmp_path
):
    summary, states, _ = run(
        **{**quick, "limit": 200, "epochs": None}, model="improved", output_dir=str(tmp_path / "out")
    )
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    params = metrics["params"]
    assert (params["model"], params["epochs"], params["learning_rate"], summary.n) == ("improved", 15, 0.05, 2)
    assert all(len(fold["history"]["val_accuracy"]) == 15 for fold in metrics["folds"])
    assert states["train_fold"] == ["Completed", "Completed"]
    assert all(0.1 < accuracy <= 1 for accuracy in summary.accuracies)


@pytest.mark.parametrize(
    "bad, name",
    [
        ({"folds": 1}, "folds"),
        ({"epochs": -1}, "epochs"),
        ({"learning_rate": -0.01}, "learning_rate"),
        ({"limit": 5}, "limit"),
        ({"model": "resnet"}, "model"),
        ({"scaling": "minmax"}, "scaling"),
        ({"batch_size": -1}, "batch_size"),
    ],
)
def test_bad_parameters_are_refused_before_any_task_runs(prefect_server, artifacts_dir, quick, bad, name):
    with pytest.raises(ParameterTypeError, match=name):
        cross_validate(**{**quick, **bad})
    assert not artifacts_dir.exists(), "no data task may run for invalid parameters"


def test_limit_larger_than_the_data_fails_naming_limit(prefect_server, artifacts_dir, quick):
    with pytest.raises(PipelineError, match=r"limit must be between 10 and \d+ .*got limit=10000000"):
        cross_validate(**{**quick, "limit": 10_000_000})


def test_a_remote_cache_url_holds_the_arrays_and_is_reused(prefect_server, artifacts_dir, quick, tmp_path, monkeypatch):
    """MNIST_CACHE_URL as an fsspec URL (memory:// stands in for s3:// here; threads share it)."""
    import fsspec

    url = f"memory://mnist-cache-{uuid.uuid4().hex}"
    monkeypatch.setenv("MNIST_CACHE_URL", url)
    memory = fsspec.filesystem("memory")
    try:
        summary, states, _ = run(**quick, runner="thread", output_dir=str(tmp_path / "first"))
        assert summary.n == 2 and states["train_fold"] == ["Completed", "Completed"]
        remote = {path.rsplit("/", 1)[1] for path in memory.ls(url, detail=False)}
        assert remote and remote == {path.name for path in (artifacts_dir / "fetched").iterdir()}
        assert not (artifacts_dir / "cache").exists()

        _, states, _ = run(**quick, runner="thread", output_dir=str(tmp_path / "second"))
        assert {state for name in DATA_TASKS for state in states[name]} == {"Cached"}

        scaled = next(
            name for name in remote if _is_scaled_images(np.load(artifacts_dir / "fetched" / name, mmap_mode="r"))
        )
        memory.rm(f"{url}/{scaled}")
        _, states, _ = run(**quick, runner="thread", output_dir=str(tmp_path / "third"))
        assert "Completed" in states["normalize_images"]
        assert memory.exists(f"{url}/{scaled}")
    finally:
        memory.rm(url, recursive=True)
