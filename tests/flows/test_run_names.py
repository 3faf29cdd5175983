import functools

import pytest
from prefect import Flow, get_client

from mnist_pipeline.flows.compare import compare
from mnist_pipeline.flows.cross_validate import cross_validate
from mnist_pipeline.flows.evaluate import evaluate
from mnist_pipeline.flows.finalize import finalize
from mnist_pipeline.flows.predict import predict
from mnist_pipeline.flows.retrain import retrain


def stand_in(real: Flow) -> Flow:
    """A flow with the real one's name, parameters and run name, whose body does nothing."""

    @functools.wraps(real.fn)
    def nothing(*args, **kwargs) -> None:
        return None

    return Flow(nothing, name=real.name, flow_run_name=real.flow_run_name)


@pytest.mark.parametrize(
    "flow, parameters, name",
    [
        (cross_validate, {}, "cv-baseline-5folds"),
        (cross_validate, {"model": "deeper", "folds": 3}, "cv-deeper-3folds"),
        (compare, {}, "compare-3models"),
        (compare, {"models": ["baseline", "improved"]}, "compare-2models"),
        (finalize, {"seed": 2}, "finalize-deeper-s2"),
        (evaluate, {}, "evaluate-champion"),
        (evaluate, {"model_version": "v0003"}, "evaluate-v0003"),
        (retrain, {"model": "improved"}, "retrain-improved-s1"),
        (predict, {"images": ["one.png", "two.png", "scans/"]}, "predict-3images"),
    ],
)
def test_flow_runs_are_named_by_what_they_do(prefect_server, flow, parameters, name):
    state = stand_in(flow)(**parameters, return_state=True)
    assert state.is_completed(), state
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(state.state_details.flow_run_id).name == name
