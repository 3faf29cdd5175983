"""runner=dask against a real `dask scheduler` and `dask worker` processes on 127.0.0.1."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import dask
import pytest
from distributed import Client

from mnist_pipeline import settings
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.flows.cross_validate import cross_validate
from mnist_pipeline.orchestration.dask_cluster import DaskConnectionError
from mnist_pipeline.parallel import threads_per_worker

DASK = str(Path(sys.executable).with_name("dask"))


class DaskCluster:
    """A `dask scheduler` and single-thread `dask worker` processes without nannies (so a worker's
    pid is the process that trains), each logging to a file in `directory`."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.processes: list[subprocess.Popen] = []
        self.workers: list[tuple[subprocess.Popen, Path]] = []
        self.address = ""

    def start_scheduler(self) -> None:
        scheduler_file = self.directory / "scheduler.json"
        self._start(
            [
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(scheduler_file),
            ],
            "scheduler",
        )
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.address = json.loads(scheduler_file.read_text())["address"]

    def _start(self, arguments: list[str], name: str, environment=None) -> tuple[subprocess.Popen, Path]:
        log = self.directory / f"{name}-{len(self.processes)}.log"
        with open(log, "w") as file:
            self.processes.append(
                subprocess.Popen([DASK, *arguments], stdout=file, stderr=subprocess.STDOUT, env=environment)
            )
        return self.processes[-1], log

    def live_workers(
        self, count: int, environment: dict[str, str] | None = None
    ) -> list[tuple[subprocess.Popen, Path]]:
        """`count` running workers, started as needed (in `environment`, else this process's); (process, log
        file) each."""
        self.workers = [worker for worker in self.workers if worker[0].poll() is None]
        options = ["--nthreads", "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"]
        while len(self.workers) < count:
            self.workers.append(self._start(["worker", self.address, *options], "worker", environment))
        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(count, timeout=90)
        return self.workers

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """One cluster for the module: its workers import Prefect and TensorFlow once."""
    cluster = DaskCluster(tmp_path_factory.mktemp("dask"))
    try:
        cluster.start_scheduler()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def quick(mnist_dir):
    return {"folds": 2, "epochs": 1, "limit": 600, "seed": 3, "data_dir": str(mnist_dir), "runner": "dask"}


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fold_pids(output: Path) -> dict[int, int]:
    metrics = json.loads((output / "metrics.json").read_text())
    return {fold["fold"]: int(fold["worker"].rsplit(":", 1)[1]) for fold in metrics["folds"]}


def test_folds_run_on_the_workers_of_an_existing_cluster(prefect_server, artifacts_dir, quick, tmp_path, dask_cluster):
    workers = dask_cluster.live_workers(2)
    state = cross_validate(
        **quick, dask_address=dask_cluster.address, output_dir=str(tmp_path / "out"), return_state=True
    )
    assert state.is_completed()
    assert set(fold_pids(tmp_path / "out").values()) == {process.pid for process, _ in workers}
    with Client(dask_cluster.address) as client:
        capped = client.run(
            lambda: (os.environ.get("TF_NUM_INTRAOP_THREADS"), os.environ.get("TF_NUM_INTEROP_THREADS"))
        )
    expected = str(threads_per_worker(settings.available_cores(), len(workers)))
    assert set(capped.values()) == {(expected, "1")}


def test_a_fold_whose_worker_dies_runs_again_on_the_other_worker(
    prefect_server, artifacts_dir, quick, tmp_path, dask_cluster
):
    epochs = 30
    killed = {}

    def kill_the_first_worker_to_finish_an_epoch(workers, stop: threading.Event):
        while not stop.is_set():
            for process, log in workers:
                if f" epoch 1/{epochs}:" in log.read_text():
                    process.send_signal(signal.SIGKILL)
                    killed["pid"] = process.pid
                    return
            time.sleep(0.05)

    workers = dask_cluster.live_workers(2)
    stop = threading.Event()
    killer = threading.Thread(target=kill_the_first_worker_to_finish_an_epoch, args=(workers, stop))
    killer.start()
    try:
        state = cross_validate(
            **{**quick, "epochs": epochs},
            dask_address=dask_cluster.address,
            output_dir=str(tmp_path / "out"),
            return_state=True,
        )
    finally:
        stop.set()
        killer.join()
    assert killed, "no worker reported a first epoch"
    assert state.is_completed()
    survivor = next(process.pid for process, _ in workers if process.pid != killed["pid"])
    assert fold_pids(tmp_path / "out") == {1: survivor, 2: survivor}
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert all(len(fold["history"]["val_accuracy"]) == epochs for fold in metrics["folds"])


def test_without_an_address_folds_run_on_a_local_cluster_of_processes(prefect_server, artifacts_dir, quick, tmp_path):
    state = cross_validate(**quick, workers=2, output_dir=str(tmp_path / "out"), return_state=True)
    assert state.is_completed()
    pids = set(fold_pids(tmp_path / "out").values())
    assert len(pids) == 2 and os.getpid() not in pids


def test_an_unreachable_scheduler_fails_in_one_line_naming_the_address(
    prefect_server, artifacts_dir, quick, unused_port
):
    address = f"tcp://127.0.0.1:{unused_port}"
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        with pytest.raises(DaskConnectionError, match=f"cannot reach the Dask scheduler at {address} .*--dask-address"):
            cross_validate(**quick, dask_address=address)


def test_dask_address_without_runner_dask_is_refused_before_any_task_runs(prefect_server, artifacts_dir, quick):
    with pytest.raises(PipelineError, match="dask_address is only used with runner='dask', got runner='process'"):
        cross_validate(**{**quick, "runner": "process"}, dask_address="tcp://127.0.0.1:8786")
    assert not artifacts_dir.exists()
