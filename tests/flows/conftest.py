import time

import pytest
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter

from mnist_pipeline.flows.finalize import finalize


def task_states(flow_run_ids, waiting_for: tuple[str, ...] = (), timeout: float = 30) -> dict[str, list[str]]:
    """{task function name: [state names]} over the given flow runs, once the tasks `waiting_for` are among them:
    the server records task runs from the events their runs send, a moment after the runs themselves end."""
    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": list(flow_run_ids)}))
        states: dict[str, list[str]] = {}
        for task_run in task_runs:
            states.setdefault(task_run.task_key.rsplit("-", 1)[0], []).append(task_run.state.name)
        if set(waiting_for) <= set(states) or time.monotonic() > deadline:
            return states
        time.sleep(0.5)


def flow_run_artifacts(flow_run_id) -> dict[str, str]:
    """{artifact key: data} of one flow run."""
    with get_client(sync_client=True) as client:
        return {a.key: a.data for a in client.read_artifacts() if a.flow_run_id == flow_run_id and a.key}


@pytest.fixture(scope="module")
def registered_model(prefect_server, mnist_dir, tmp_path_factory):
    """A baseline model finalized once per test module on 1,000 real images, in its own artifacts folder."""
    artifacts = tmp_path_factory.mktemp("artifacts")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MNIST_ARTIFACTS_DIR", str(artifacts))
        summary = finalize(
            model="baseline", epochs=3, limit=1000, data_dir=str(mnist_dir), output_dir=str(artifacts / "finalize")
        )
        yield summary, artifacts, patch
