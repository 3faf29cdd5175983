import importlib
import os
import re
from pathlib import Path

import numpy as np
import pytest
from prefect import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterTextSearch
from prefect.logging.handlers import APILogWorker

import mnist_pipeline.training
from mnist_pipeline.ensemble import members_of
from mnist_pipeline.flows.cli import main
from mnist_pipeline.flows.finalize import finalize
from mnist_pipeline.flows.predict import predict
from mnist_pipeline.flows.retrain import retrain
from mnist_pipeline.mnist import read_directory
from mnist_pipeline.models import load_checked_model
from mnist_pipeline.registry import Registry
from mnist_pipeline.tasks.members import MembersFailed
from mnist_pipeline.training import TrainingDiverged
from tests.flows.conftest import task_states

SMALL = {"model": "ensemble", "members": 2, "member_model": "baseline", "epochs": 1, "limit": 300}


def member_logs(artifacts_dir) -> dict[int, tuple[int, str]]:
    """{member: (pid of the process that trained it, its file)}, from the server's logs of the runs here."""
    APILogWorker.drain_all(timeout=10)
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(text=LogFilterTextSearch(query=str(artifacts_dir))))
    messages = [log.message for log in logs]
    pattern = rf"member (\d): trained in \d+ s by [^:]+:(\d+), saved as ({re.escape(str(artifacts_dir))}\S+)"
    return {int(match[1]): (int(match[2]), match[3]) for match in map(re.compile(pattern).fullmatch, messages) if match}


def test_an_ensemble_trains_its_members_in_processes_and_is_one_file_that_averages_them(
    prefect_server, artifacts_dir, mnist_dir, tmp_path
):
    promotion = retrain(**SMALL, min_accuracy=0, data_dir=str(mnist_dir), output_dir=str(tmp_path / "retrain"))
    assert (promotion.version, promotion.promoted) == ("v0001", True)
    registry = Registry(artifacts_dir / "models")
    metadata = registry.metadata("v0001")
    assert metadata["parameters"]["model"] == "ensemble" and metadata["parameters"]["members"] == 2
    assert metadata["parameters"]["member_model"] == "baseline" and metadata["test_metrics"]["accuracy"] > 0.1
    files = sorted(path.name for path in registry.path("v0001").iterdir())
    assert files == ["changes", "metadata.json", "model.keras", "reference.npz"]  # changes/: test metrics, promotion

    workers = member_logs(artifacts_dir)
    assert sorted(workers) == [1, 2]
    assert os.getpid() not in {pid for pid, _ in workers.values()}, "members train in processes of their own"

    ensemble = load_checked_model(registry.path("v0001") / "model.keras")  # Keras's safe mode
    assert [member.name for member in members_of(ensemble)] == ["member_1", "member_2"]
    digits = read_directory(mnist_dir).test_images[:20, :, :, None].astype(np.float32) / 255
    member_predictions = [load_checked_model(Path(workers[n][1])).predict(digits, verbose=0) for n in (1, 2)]
    assert not np.allclose(*member_predictions, atol=1e-3), "members differ: each has its own seed"
    np.testing.assert_allclose(ensemble.predict(digits, verbose=0), np.mean(member_predictions, axis=0), atol=1e-6)

    from PIL import Image

    Image.fromarray(read_directory(mnist_dir).test_images[0]).save(tmp_path / "digit.png")
    [prediction] = predict(images=[str(tmp_path / "digit.png")], output_dir=str(tmp_path / "predict")).predictions
    assert prediction["digit"] == int(ensemble.predict(digits[:1], verbose=0).argmax())


def test_a_failed_member_is_named_and_the_others_are_cached_for_the_rerun(
    prefect_server, artifacts_dir, mnist_dir, tmp_path, monkeypatch
):
    finalize_module = importlib.import_module("mnist_pipeline.flows.finalize")
    processes = finalize_module.fold_task_runner
    monkeypatch.setattr(finalize_module, "fold_task_runner", lambda runner, workers: processes("thread", workers))
    real_train = mnist_pipeline.training.train_model

    def member_2_diverges(config, *arrays, seed, report):
        if seed == config.seed + 2:
            raise TrainingDiverged("the loss became nan in epoch 1, by batch 3; lower the learning rate")
        return real_train(config, *arrays, seed=seed, report=report)

    monkeypatch.setattr(mnist_pipeline.training, "train_model", member_2_diverges)
    with pytest.raises(MembersFailed, match=r"member 2 failed: the loss became nan .*\. 1 of 2 members finished"):
        finalize(**SMALL, data_dir=str(mnist_dir), output_dir=str(tmp_path / "failed"))
    assert Registry(artifacts_dir / "models").versions() == []

    monkeypatch.setattr(mnist_pipeline.training, "train_model", real_train)
    state = finalize(**SMALL, data_dir=str(mnist_dir), output_dir=str(tmp_path / "rerun"), return_state=True)
    assert state.result().version == "v0001"
    assert sorted(task_states([state.state_details.flow_run_id])["train_member"]) == ["Cached", "Completed"]


@pytest.mark.parametrize(
    "arguments",
    [["cv", "--model", "ensemble"], ["compare", "--models", "baseline,ensemble"], ["finalize", "--members", "1"]],
)
def test_folds_train_single_models_and_an_ensemble_has_two_members_or_more(arguments, capsys, artifacts_dir):
    assert main(arguments) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and ("'ensemble'" in error or "--members '1'" in error), error
    assert not artifacts_dir.exists()
