"""New labeled data starts `retrain` through the deployment's trigger, on a real server and worker; two retrains
at once train one after the other on the `mnist-training` slot; a retrain without new data registers nothing."""

import subprocess
import time
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from PIL import Image
from prefect.client.schemas.actions import DeploymentUpdate
from prefect.client.schemas.filters import FlowRunFilter, TaskRunFilter
from prefect.events.filters import EventFilter, EventNameFilter, EventRelatedFilter

from mnist_pipeline.datastore import DataStore
from mnist_pipeline.mnist import read_directory
from mnist_pipeline.orchestration.events import DATA_ARRIVED
from mnist_pipeline.orchestration.training_slot import TRAINING_LIMIT, ensure_training_limit
from mnist_pipeline.registry import Registry
from tests.serving.conftest import CLI, encoded

pytestmark = pytest.mark.e2e

SMALL = {"model": "baseline", "limit": 300, "epochs": 1, "min_accuracy": 0, "tolerance": 1}  # each one promotes


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


def trainings(stack, retrain_run_ids) -> dict:
    """Each retrain run's `train_final_model` task run (in its finalize subflow), once it has one."""
    found = {}
    with stack.client() as client:
        for retrain_run_id in retrain_run_ids:
            children = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(parent_flow_run_id={"any_": [retrain_run_id]})
            )
            if children:
                task_runs = client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id={"any_": [child.id for child in children]}),
                    task_run_filter=TaskRunFilter(name={"like_": "train_final_model"}),
                )
                if task_runs:
                    [found[retrain_run_id]] = task_runs
    return found


def wait_until_both_wait_for_the_slot(stack, retrain_run_ids, timeout: float = 400) -> None:
    deadline = time.monotonic() + timeout
    while not (
        len(running := trainings(stack, retrain_run_ids)) == 2
        and all(task_run.state.is_running() for task_run in running.values())
    ):
        for retrain_run_id in retrain_run_ids:
            with stack.client() as client:
                state = client.read_flow_run(retrain_run_id).state
            assert not state.is_final(), f"{state}\n" + stack.log_tail("worker")
        assert time.monotonic() < deadline, "the retrains did not reach their training:\n" + stack.log_tail("worker")
        time.sleep(2)


def persisted_events(stack, name: str, timeout: float = 30) -> list:
    """The server's event persister saves events in batches (every 5 s by default) while its triggers act on
    them at once, so the run an event started can be readable before the event is."""
    deadline = time.monotonic() + timeout
    while True:
        with stack.client() as client:
            events = client.read_events(filter=EventFilter(event=EventNameFilter(name=[name])), limit=10).events
        if events or time.monotonic() > deadline:
            return events
        time.sleep(1)


def slot_holdings(stack, task_runs, timeout: float = 60) -> list[tuple[datetime, datetime, object]]:
    """(acquired, released, task run) of each task run's hold on the `mnist-training` slot, from the events
    that Prefect's `concurrency()` sends (related to the task run that held it), in the order acquired."""
    names = ["prefect.concurrency-limit.acquired", "prefect.concurrency-limit.released"]
    by_id = {f"prefect.task-run.{task_run.id}": task_run for task_run in task_runs}
    deadline = time.monotonic() + timeout
    while True:
        with stack.client() as client:
            page = client.read_events(
                filter=EventFilter(event=EventNameFilter(name=names), related=EventRelatedFilter(id=list(by_id))),
                limit=50,
            )
        times = {}
        for event in page.events:
            assert event.resource["prefect.resource.name"] == TRAINING_LIMIT
            [holder] = [related.id for related in event.related if related.id in by_id]
            times[holder, event.event] = event.occurred
        if len(times) == 2 * len(by_id):
            return sorted((times[holder, names[0]], times[holder, names[1]], by_id[holder]) for holder in by_id)
        assert time.monotonic() < deadline, f"slot events missing: {sorted(times)}"
        time.sleep(2)


def test_added_data_triggers_a_retrain_two_retrains_train_in_turn_and_without_new_data_one_registers_nothing(
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


@contextmanager
def holding_the_training_slot(stack):
    """The training slot held through the stack's API. (Prefect's `concurrency()` would do it through a service that
    lives on in this process, bound to this stack's server, and fail the later trainings of the session's tests.)"""
    with stack.client() as client:
        ensure_training_limit()
        lease = client.increment_concurrency_slots_with_lease(
            names=[TRAINING_LIMIT], slots=1, mode="concurrency", lease_duration=600
        )
        try:
            yield
        finally:
            client.release_concurrency_slots_with_lease(lease.json()["lease_id"])


def added_data_starts_a_retrain(stack, deployment, mnist_dir, tmp_path):
    runs_before = {flow_run.id for flow_run in triggered_runs(stack, deployment.id)}  # other tests' runs
    mnist = read_directory(mnist_dir)
    environment = {**stack.env, "MNIST_DATA_DIR": str(mnist_dir)}

    copies = labeled_pngs(tmp_path / "copies", mnist.test_images[:3], mnist.test_labels[:3], lossless_copies=True)
    refused = subprocess.run([CLI, "add-data", str(copies)], env=environment, capture_output=True, text=True)
    assert refused.returncode == 1 and refused.stderr.count("a copy of an MNIST test image") == 3, refused.stderr
    assert "0 added" in refused.stdout and "mnist.data.arrived" not in refused.stdout

    scans = labeled_pngs(tmp_path / "scans", mnist.train_images[-12:], mnist.train_labels[-12:])
    with holding_the_training_slot(stack):  # so that the two retrains below both wait in line for it
        added = subprocess.run([CLI, "add-data", str(scans)], env=environment, capture_output=True, text=True)
        assert added.returncode == 0 and "sent the event mnist.data.arrived" in added.stdout, added.stderr

        deadline = time.monotonic() + 60
        while not (runs := [run for run in triggered_runs(stack, deployment.id) if run.id not in runs_before]):
            assert time.monotonic() < deadline, "the trigger started no retrain:\n" + stack.log_tail("server")
            time.sleep(2)
        [run] = runs  # the refused batch sent no event, so this run is the good batch's
        [event] = persisted_events(stack, DATA_ARRIVED)
        assert (
            event.resource.id == f"mnist.data.{DataStore(stack.directory / 'artifacts' / 'data').summary()['digest']}"
        )
        assert (event.payload["added"], event.payload["examples"], event.payload["source"]) == (
            12,
            12,
            "import:scans",
        )
        with stack.client() as client:  # and another retrain at the same time
            other = client.create_flow_run_from_deployment(deployment.id, parameters={**SMALL, "force": True})
        wait_until_both_wait_for_the_slot(stack, [run.id, other.id])
        released = datetime.now(UTC)

    for flow_run_id in (run.id, other.id):
        flow_run = stack.wait_for_final_state(flow_run_id, timeout=400)
        assert flow_run.state.is_completed(), f"{flow_run.state}\n" + stack.log_tail("worker")
    task_runs = trainings(stack, [run.id, other.id]).values()
    assert all(task_run.state.is_completed() for task_run in task_runs)
    (first_acquired, first_released, _), (second_acquired, _, second) = slot_holdings(stack, task_runs)
    assert released <= first_acquired < first_released <= second_acquired, "the two trainings overlapped"
    assert second.start_time < first_released, "the second training did not wait in line while the first trained"

    registry = Registry(stack.directory / "artifacts" / "models")
    versions = registry.versions()
    for version in versions[-2:]:
        data = registry.metadata(version)["data"]
        assert data["new_examples"] + data["held_out_examples"] == 12 and data["store_digest"]

    with stack.client() as client:  # the same data and parameters as the champion: nothing to learn
        again = client.create_flow_run_from_deployment(deployment.id, parameters=SMALL)
    flow_run = stack.wait_for_final_state(again.id, timeout=300)
    assert flow_run.state.is_completed(), f"{flow_run.state}\n" + stack.log_tail("worker")
    assert registry.versions() == versions and registry.champion() in versions[-2:]
