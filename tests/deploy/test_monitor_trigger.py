"""A `mnist-pipeline monitor` run that finds the served model degraded sends mnist.model.degraded, and the retrain
deployment's trigger creates a run with the deployment's parameters. The work pool is paused meanwhile, so that the
run is created but no worker starts it (the deployment's defaults retrain `deeper` on every image), then cancelled."""

import subprocess
import time

import numpy as np
import pytest
from prefect.states import Cancelled

from mnist_pipeline import prediction_log
from mnist_pipeline.mnist import read_directory
from mnist_pipeline.monitoring.reference import build_reference
from mnist_pipeline.registry import REFERENCE_FILE, Registry
from tests.deploy.test_retrain_on_new_data import persisted_events
from tests.serving.conftest import CLI

pytestmark = pytest.mark.e2e
DEGRADED = "mnist.model.degraded"


def confident(answers: np.ndarray) -> np.ndarray:
    probabilities = np.full((len(answers), 10), 0.002, np.float32)
    probabilities[np.arange(len(answers)), answers] = 0.982
    return probabilities


def degraded_store(root, mnist) -> str:
    """A champion whose reference is right on every digit, and a log where a third of its answers were wrong."""
    registry = Registry(root / "models")
    images, labels = mnist.train_images[:600], mnist.train_labels[:600]
    with registry.staging() as staged:
        (staged / REFERENCE_FILE).write_bytes(build_reference(images, labels, confident(labels)).to_bytes())
        version = registry.publish(staged, {"scaling": {"mode": "unit", "mean": 0.0, "std": 1.0}})
    registry.promote(version, "a test champion")
    answers = np.where(np.arange(300) % 3 == 0, (labels[:300] + 1) % 10, labels[:300])
    now = time.time()
    ids = [prediction_log.new_prediction_id() for _ in range(300)]
    batch = prediction_log.PredictionBatch.of(ids, [now - 60] * 300, [version] * 300, images[:300], confident(answers))
    prediction_log.write_predictions(str(root), batch)
    records = [
        {
            "prediction_id": i,
            "label": int(label),
            "confirmed": False,
            "time": now - 30,
            "predicted": None,
            "version": None,
        }
        for i, label in zip(ids, labels[:300])
    ]
    prediction_log.write_labels(str(root), records)
    return version


def triggered_runs(stack, deployment_id) -> list:
    """The deployment's runs that no schedule made."""
    return [run for run in stack.flow_runs(deployment_id) if not run.auto_scheduled]


@pytest.fixture
def paused_pool(stack):
    paused = stack.cli("work-pool", "pause", "mnist-pool")
    assert paused.returncode == 0, paused.stdout + paused.stderr
    try:
        yield
    finally:
        resumed = stack.cli("work-pool", "resume", "mnist-pool")
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr


def test_a_degraded_verdict_starts_one_retrain_through_the_trigger(stack, paused_pool, mnist_dir, tmp_path):
    version = degraded_store(tmp_path / "store", read_directory(mnist_dir))
    deployment = stack.deployment("retrain")
    runs_before = {flow_run.id for flow_run in triggered_runs(stack, deployment.id)}
    environment = {**stack.env, "MNIST_ARTIFACTS_DIR": str(tmp_path / "store")}
    monitored = subprocess.run(
        [CLI, "monitor", "--output", str(tmp_path / "run")], env=environment, capture_output=True, text=True
    )
    assert monitored.returncode == 0, monitored.stderr
    assert f"{version}: degraded" in monitored.stdout and f"sent the event {DEGRADED}" in monitored.stdout

    deadline = time.monotonic() + 60
    while not (runs := [run for run in triggered_runs(stack, deployment.id) if run.id not in runs_before]):
        assert time.monotonic() < deadline, "the trigger started no retrain:\n" + stack.log_tail("server")
        time.sleep(2)
    [run] = runs
    assert run.state.is_scheduled()  # created, and left alone by the paused pool's worker
    assert run.parameters == deployment.parameters
    [event] = persisted_events(stack, DEGRADED)
    assert event.resource.id == f"mnist.model.{version}"
    assert event.payload["tests"]["accuracy"]["alarm"] and event.payload["live_accuracy"] < 0.7

    again = subprocess.run(
        [CLI, "monitor", "--output", str(tmp_path / "again")], env=environment, capture_output=True, text=True
    )
    assert f"sent the event {DEGRADED}" in again.stdout, again.stderr
    time.sleep(10)  # within the cooldown a second degraded verdict starts nothing
    later = [run for run in triggered_runs(stack, deployment.id) if run.id not in runs_before]
    with stack.client() as client:
        for created in later:
            client.set_flow_run_state(created.id, Cancelled(), force=True)
    assert [r.id for r in later] == [run.id]
