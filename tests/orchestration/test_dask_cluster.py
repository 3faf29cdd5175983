import os
from types import SimpleNamespace

import pytest

from mnist_pipeline import settings
from mnist_pipeline.orchestration.console import WithoutUserErrorTracebacks, prefect_console_handlers
from mnist_pipeline.orchestration.dask_cluster import TensorFlowThreads, UserErrorsInOneLine


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    monkeypatch.delenv("TF_NUM_INTEROP_THREADS", raising=False)


def worker(address: str, nthreads: int = 1):
    return SimpleNamespace(address=address, state=SimpleNamespace(nthreads=nthreads))


def test_a_worker_gets_the_threads_computed_for_its_host():
    TensorFlowThreads({"10.0.0.5": 4, "10.0.0.6": 1}).setup(worker("tcp://10.0.0.5:40123"))
    assert os.environ["TF_NUM_INTRAOP_THREADS"] == "4" and os.environ["TF_NUM_INTEROP_THREADS"] == "1"


def test_a_worker_on_a_host_that_joined_later_shares_its_own_cores_among_its_threads():
    TensorFlowThreads({"10.0.0.5": 4}).setup(worker("tcp://10.0.0.9:40123", nthreads=2))
    assert os.environ["TF_NUM_INTRAOP_THREADS"] == str(max(1, settings.available_cores() // 2))


def test_a_worker_shows_user_errors_in_one_line_on_its_console():
    formatters = {handler: handler.formatter for handler in prefect_console_handlers()}
    try:
        for handler, formatter in formatters.items():
            handler.setFormatter(getattr(formatter, "formatter", formatter))  # as a fresh worker has them
        UserErrorsInOneLine().setup(worker("tcp://10.0.0.5:40123"))
        assert formatters and all(isinstance(h.formatter, WithoutUserErrorTracebacks) for h in formatters)
    finally:
        for handler, formatter in formatters.items():
            handler.setFormatter(formatter)
