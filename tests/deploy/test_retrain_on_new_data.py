"""New labeled data starts `retrain` through the deployment's trigger, on a real server and worker."""

import subprocess
import time

import pytest
from PIL import Image
from prefect.client.schemas.actions import DeploymentUpdate
from prefect.client.schemas.filters import FlowRunFilter

from mnist_pipeline.mnist import read_directory
from mnist_pipeline.registry import Registry
from tests.serving.conftest import CLI, encoded

pytestmark = pytest.mark.e2e

SMALL = {"model": "baseline", "limit": 300, "epochs": 1, "min_accuracy": 0}


def labeled_pngs(folder, images, labels, lossless_copies=False):
    folder.mkdir()
    for index, image in enumerate(images):
        if lossless_copies:
            Image.fromarray(image).save(folder / f"{index}.png")
        else:
            (folder / f"{index}.png").write_bytes(encoded(image, "PNG"))
    rows = [f"{index}.png,{label}" for index, label in enumerate(labels)]
    (folder / "labels.csv").write_text("file,label\n" + "\n".join(rows) + "\n")
    return folder


def triggered_runs(stack, deployment_id) -> list:
    not_scheduled = FlowRunFilter(state={"type": {"not_any_": ["SCHEDULED"]}})
    return stack.flow_runs(deployment_id, flow_run_filter=not_scheduled)


def test_add_data_triggers_a_retrain_that_learns_from_it_and_a_refused_batch_triggers_nothing(
    stack, mnist_dir, tmp_path
):
    deployment = stack.deployment("retrain")
    with stack.client() as client:  # small runs for the test; the trigger runs with the deployment's parameters
        client.update_deployment(deployment.id, DeploymentUpdate(parameters=SMALL))
    try:
        added_data_starts_a_retrain(stack, deployment, mnist_dir, tmp_path)
    finally:
        with stack.client() as client:
            client.update_deployment(deployment.id, DeploymentUpdate(parameters={"model": "deeper"}))


def added_data_starts_a_retrain(stack, deployment, mnist_dir, tmp_path):
    runs_before = {flow_run.id for flow_run in triggered_runs(stack, deployment.id)}  # other tests' runs
    mnist = read_directory(mnist_dir)
    environment = {**stack.env, "MNIST_DATA_DIR": str(mnist_dir)}

    copies = labeled_pngs(tmp_path / "copies", mnist.test_images[:3], mnist.test_labels[:3], lossless_copies=True)
    refused = subprocess.run([CLI, "add-data", str(copies)], env=environment, capture_output=True, text=True)
    assert refused.returncode == 1 and refused.stderr.count("a copy of an MNIST test image") == 3, refused.stderr
    assert "0 added" in refused.stdout and "mnist.data.arrived" not in refused.stdout

    scans = labeled_pngs(tmp_path / "scans", mnist.train_images[-12:], mnist.train_labels[-12:])
    added = subprocess.run([CLI, "add-data", str(scans)], env=environment, capture_output=True, text=True)
    assert added.returncode == 0 and "sent the event mnist.data.arrived" in added.stdout, added.stderr

    deadline = time.monotonic() + 60
    while not (runs := [run for run in triggered_runs(stack, deployment.id) if run.id not in runs_before]):
        assert time.monotonic() < deadline, "the trigger started no retrain:\n" + stack.log_tail("server")
        time.sleep(2)
    [run] = runs  # the refused batch sent no event, so this run is the good batch's
    flow_run = stack.wait_for_final_state(run.id, timeout=400)
    assert flow_run.state.is_completed(), f"{flow_run.state}\n" + stack.log_tail("worker")
    registry = Registry(stack.directory / "artifacts" / "models")
    data = registry.metadata(registry.versions()[-1])["data"]
    assert data["new_examples"] + data["held_out_examples"] == 12 and data["store_digest"]
