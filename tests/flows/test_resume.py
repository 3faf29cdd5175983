import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

import mnist_pipeline.training
from mnist_pipeline.flows.cross_validate import cross_validate
from mnist_pipeline.tasks.training import FoldsFailed
from mnist_pipeline.training import TrainingDiverged
from tests.flows.conftest import task_states
from tests.prefect_homes import prefect_home


def test_a_killed_run_resumes_with_its_finished_folds_cached(prefect_server, mnist_dir, tmp_path, monkeypatch):
    environment = {
        **os.environ,
        "MNIST_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
        "PREFECT_HOME": str(prefect_home(tmp_path / "prefect")),
    }
    environment.pop("PREFECT_API_URL", None)
    command = [
        sys.executable,
        "-m",
        "mnist_pipeline.flows.cli",
        "cv",
        "--folds",
        "3",
        "--workers",
        "1",
        "--epochs",
        "2",
        "--limit",
        "900",
        "--data-dir",
        str(mnist_dir),
    ]

    killed = subprocess.Popen(
        [*command, "--output", str(tmp_path / "killed")],
        env=environment,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log, deadline = [], time.monotonic() + 240
    try:
        for line in killed.stdout:
            log.append(line)
            if "train-fold-2' - fold 2 epoch 1/2" in line or time.monotonic() > deadline:
                break
    finally:
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    fold_1 = [re.search(r"val_accuracy=(\d\.\d{4})", line) for line in log if "fold 1 epoch 2/2" in line]
    assert fold_1 and fold_1[0], "".join(log[-30:])

    resumed = subprocess.run(
        [*command, "--output", str(tmp_path / "resumed")], env=environment, text=True, capture_output=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert re.search(r"train-fold-1' - Finished in state Cached", resumed.stderr)
    assert len(re.findall(r"train-fold-[23]' - Finished in state Completed", resumed.stderr)) == 2
    metrics = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    assert f"{metrics['folds'][0]['accuracy']:.4f}" == fold_1[0].group(1)

    monkeypatch.setenv("MNIST_ARTIFACTS_DIR", str(tmp_path / "uninterrupted"))
    uninterrupted = cross_validate(
        folds=3, workers=1, epochs=2, limit=900, data_dir=str(mnist_dir), output_dir=str(tmp_path / "u")
    )
    assert [fold["accuracy"] for fold in metrics["folds"]] == uninterrupted.accuracies


def test_a_failed_fold_is_named_and_the_others_are_kept(
    prefect_server, artifacts_dir, mnist_dir, tmp_path, monkeypatch
):
    real_fit = mnist_pipeline.training.fit_and_validate

    def fold_2_diverges(config, *arrays, seed, report):
        if seed == config.seed + 2:
            raise TrainingDiverged("the loss became nan in epoch 1, by batch 3; lower the learning rate")
        return real_fit(config, *arrays, seed=seed, report=report)

    parameters = {"folds": 2, "epochs": 1, "limit": 300, "runner": "thread", "data_dir": str(mnist_dir)}
    monkeypatch.setattr(mnist_pipeline.training, "fit_and_validate", fold_2_diverges)
    with pytest.raises(
        FoldsFailed, match=r"fold 2 failed: the loss became nan .*lower the learning rate\. 1 of 2 folds finished"
    ):
        cross_validate(**parameters, output_dir=str(tmp_path / "failed"))

    monkeypatch.setattr(mnist_pipeline.training, "fit_and_validate", real_fit)
    state = cross_validate(**parameters, output_dir=str(tmp_path / "rerun"), return_state=True)
    assert sorted(task_states([state.state_details.flow_run_id])["train_fold"]) == ["Cached", "Completed"]


def test_retries_train_a_failed_fold_again_within_the_run(
    prefect_server, artifacts_dir, mnist_dir, tmp_path, monkeypatch
):
    real_fit, calls = mnist_pipeline.training.fit_and_validate, []

    def fails_once(config, *arrays, seed, report):
        calls.append(seed)
        if calls.count(seed) == 1 and seed == config.seed + 1:
            raise OSError("worker lost its memory-mapped file")
        return real_fit(config, *arrays, seed=seed, report=report)

    monkeypatch.setattr(mnist_pipeline.training, "fit_and_validate", fails_once)
    summary = cross_validate(
        folds=2,
        epochs=1,
        limit=300,
        runner="thread",
        retries=1,
        data_dir=str(mnist_dir),
        output_dir=str(tmp_path / "o"),
    )
    assert summary.n == 2 and sorted(calls) == [2, 2, 3]


def test_a_diverging_model_stops_with_a_clear_reason(prefect_server, artifacts_dir, mnist_dir, tmp_path):
    with pytest.raises(
        FoldsFailed,
        match=r"fold 1 failed: the loss became (nan|inf) in epoch 1, by batch \d+; lower the learning rate.*fold 2 failed",
    ):
        cross_validate(
            folds=2,
            epochs=1,
            limit=300,
            learning_rate=1e9,
            runner="thread",  # fold processes report it too: tests/flows/test_cli.py's diverging run
            data_dir=str(mnist_dir),
            output_dir=str(tmp_path / "o"),
        )
