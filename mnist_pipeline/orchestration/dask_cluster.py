"""Folds on Dask: prefect-dask's DaskTaskRunner on an existing scheduler or a LocalCluster.

Every Dask worker caps TensorFlow's threads so that the folds running at once on a host share its
cores, and shows user errors on its console in one line, as the process runner's workers do. Workers must be able to import this project and to reach the
Prefect API and the array cache (MNIST_CACHE_URL).
"""

import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from distributed import Client, WorkerPlugin
from distributed.comm.addressing import get_address_host

from mnist_pipeline import settings
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.orchestration.console import hide_user_error_tracebacks
from mnist_pipeline.parallel import configure_tensorflow_threads, threads_per_worker

if TYPE_CHECKING:
    from prefect_dask import DaskTaskRunner


class DaskConnectionError(PipelineError):
    """The Dask scheduler given as dask_address cannot be reached."""


class TensorFlowThreads(WorkerPlugin):
    """Sets TensorFlow's thread counts in each worker, also in workers that join or restart later."""

    name = "mnist-pipeline-tensorflow-threads"

    def __init__(self, threads_by_host: dict[str, int]):
        self.threads_by_host = threads_by_host

    def setup(self, worker) -> None:
        default = threads_per_worker(settings.available_cores(), worker.state.nthreads)
        configure_tensorflow_threads(self.threads_by_host.get(get_address_host(worker.address), default))


class UserErrorsInOneLine(WorkerPlugin):
    """Each worker's console shows user errors without their traceback, as the fold processes' consoles do."""

    name = "mnist-pipeline-user-errors-in-one-line"

    def setup(self, worker) -> None:
        hide_user_error_tracebacks()


def threads_by_host(client: Client) -> dict[str, int]:
    """Per host: its cores divided among the tasks its workers run at once (their threads)."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    cores = client.run(settings.available_cores)
    slots = Counter()
    for info in workers.values():
        slots[info["host"]] += info["nthreads"]
    return {info["host"]: threads_per_worker(cores[address], slots[info["host"]]) for address, info in workers.items()}


@contextmanager
def warnings_only(logger_name: str) -> Iterator[None]:
    """Prefect's console shows every record that reaches the root logger: keep Dask's INFO out."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextmanager
def dask_task_runner(address: str | None, workers: int) -> Iterator["DaskTaskRunner"]:
    """A started DaskTaskRunner whose workers cap TensorFlow's threads."""
    from prefect_dask import DaskTaskRunner  # not at the top: workers unpickle the plugin from this module

    if address:
        task_runner = DaskTaskRunner(address=address)
    else:
        cluster = {"n_workers": workers, "threads_per_worker": 1, "processes": True, "dashboard_address": ":0"}
        task_runner = DaskTaskRunner(cluster_kwargs=cluster)
    with warnings_only("distributed"), task_runner:
        try:
            client = task_runner.client
        except OSError as error:
            raise DaskConnectionError(
                f"cannot reach the Dask scheduler at {address} ({error}); start one with `dask scheduler` or correct --dask-address"
            ) from None
        client.register_plugin(TensorFlowThreads(threads_by_host(client)))
        client.register_plugin(UserErrorsInOneLine())
        yield task_runner
