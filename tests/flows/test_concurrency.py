import time
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from prefect import get_client
from prefect.client.schemas.filters import TaskRunFilter
from prefect.client.schemas.objects import StateType
from prefect.concurrency.sync import concurrency

from mnist_pipeline.arrays import array_sha256
from mnist_pipeline.flows.cross_validate import cross_validate
from mnist_pipeline.flows.finalize import finalize
from mnist_pipeline.orchestration.training_slot import TRAINING_LIMIT, ensure_training_limit


def test_two_concurrent_runs_share_the_cache_without_corrupting_it(prefect_server, artifacts_dir, mnist_dir, tmp_path):
    parameters = {"folds": 2, "epochs": 1, "limit": 300, "scaling": "standardize", "data_dir": str(mnist_dir)}
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(cross_validate, **parameters, output_dir=str(tmp_path / f"run-{i}")) for i in range(2)]
        first, second = (run.result() for run in runs)
    assert first.accuracies == second.accuracies
    arrays = sorted((artifacts_dir / "cache").iterdir())
    assert arrays and all(path.suffix == ".npy" for path in arrays), "no temporary files are left"
    for path in arrays:
        assert array_sha256(np.load(path)) == path.stem


def wait_until_running(task_name: str, until: Future, timeout: float = 120) -> None:
    """Until a run of the task `task_name` is Running on the session's server (or the run `until` ended)."""
    running = TaskRunFilter(name={"like_": task_name}, state={"type": {"any_": [StateType.RUNNING]}})
    deadline = time.monotonic() + timeout
    while not until.done():
        with get_client(sync_client=True) as client:
            if client.read_task_runs(task_run_filter=running):
                return
        assert time.monotonic() < deadline, f"no {task_name} run started within {timeout} s"
        time.sleep(0.5)


def test_a_training_waits_in_line_for_the_mnist_training_slot(prefect_server, artifacts_dir, mnist_dir, tmp_path):
    ensure_training_limit()
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name(TRAINING_LIMIT).limit == 1
    parameters = {"model": "baseline", "epochs": 1, "limit": 100, "data_dir": str(mnist_dir)}
    with ThreadPoolExecutor(max_workers=1) as pool:
        with concurrency(TRAINING_LIMIT, occupy=1, strict=True):  # another training holds the slot
            run = pool.submit(finalize, **parameters, output_dir=str(tmp_path / "queued"))
            wait_until_running("train_final_model", until=run)
            time.sleep(5)  # time enough to train 100 images for an epoch, were the slot not held
            assert not run.done() and not (tmp_path / "queued" / "model.keras").exists()
        assert run.result(timeout=300).version == "v0001"  # it trains once the slot is free
