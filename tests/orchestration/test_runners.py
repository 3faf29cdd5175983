import sys

import cloudpickle
import pytest
from prefect import flow, get_client, get_run_logger, task
from prefect.client.schemas.filters import LogFilter
from prefect.logging.handlers import APILogWorker

from mnist_pipeline.orchestration.runners import fold_task_runner

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the fold processes cannot import this test module


@task
def log_fold(fold: int) -> int:
    get_run_logger().info("fold %d epoch 1/1: done", fold)
    return fold


@flow
def folds_that_log(runner: str) -> None:
    with fold_task_runner(runner, 2) as task_runner:
        futures = task_runner.map(log_fold, {"fold": [1, 2]})
        assert [future.result() for future in futures] == [1, 2]
    get_run_logger().info("the flow goes on")


@pytest.mark.parametrize("runner", ["process", "thread"])
def test_the_folds_logs_are_on_the_server_when_the_pool_closes(prefect_server, runner):
    """The flow goes on (and may end) at once: its folds' logs must not wait for the next batch or its exit."""
    state = folds_that_log(runner, return_state=True)
    assert state.is_completed(), state
    logged = LogFilter(flow_run_id={"any_": [state.state_details.flow_run_id]})
    with get_client(sync_client=True) as client:
        assert {"fold 1 epoch 1/1: done", "fold 2 epoch 1/1: done"} <= {log.message for log in client.read_logs(logged)}
        APILogWorker.drain_all()  # what the process sends at exit: the flow's later logs still reach the server
        assert "the flow goes on" in {log.message for log in client.read_logs(logged)}
