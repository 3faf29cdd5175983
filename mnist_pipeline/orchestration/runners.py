"""The task runners that train folds in parallel: processes (default), threads, or a Dask cluster."""

from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

from prefect import Task, get_client
from prefect.logging.handlers import APILogWorker
from prefect.results import get_result_store
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from mnist_pipeline import settings
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.orchestration.console import hide_user_error_tracebacks
from mnist_pipeline.orchestration.preloaded_process_pool import PreloadedProcessPoolTaskRunner
from mnist_pipeline.parallel import configure_tensorflow_threads, threads_per_worker


def check_runner_options(runner: str, dask_address: str | None) -> None:
    if dask_address and runner != "dask":
        raise PipelineError(
            f"dask_address is only used with runner='dask', got runner={runner!r}; add --runner dask or drop --dask-address"
        )


def start_fold_process(intra_op_threads: int) -> None:
    """Process-pool initializer: TensorFlow's threads capped, and user errors in one line on its console."""
    configure_tensorflow_threads(intra_op_threads)
    hide_user_error_tracebacks()


def finds_cached(task: Task, parameters: dict[str, Any]) -> bool:
    """Whether a run of `task` with `parameters` would find its result Cached: its record read and verified
    as the run would read it (its cache key function sees the task through the context, as in a run)."""
    key = task.cache_policy.compute_key(task_ctx=SimpleNamespace(task=task), inputs=parameters, flow_parameters={})
    return key is not None and get_result_store().update_for_task(task).exists(key)


def runner_for(task: Task, calls: list[dict[str, Any]], runner: str) -> str:
    """`runner` for these calls of `task`, or `thread` where all of them find their results cached: a process
    pool would start a Python process per worker (2-4 s of CPU each) only to read them."""
    return "thread" if all(finds_cached(task, parameters) for parameters in calls) else runner


@contextmanager
def fold_task_runner(runner: str, workers: int, dask_address: str | None = None) -> Iterator[TaskRunner]:
    """A started runner for folds: processes (the default, forked with TensorFlow imported) share the cores
    among TensorFlow's threads.

    `dask`: an existing Dask scheduler at `dask_address`, else a LocalCluster of `workers` processes.
    Workers report to the flow's own API: without PREFECT_API_URL each would otherwise start a
    temporary server of its own.
    """
    with get_client(sync_client=True) as client, temporary_settings({PREFECT_API_URL: str(client.api_url)}):
        try:
            if runner == "dask":
                from mnist_pipeline.orchestration.dask_cluster import (
                    dask_task_runner,  # distributed loads only when asked for
                )

                with dask_task_runner(dask_address, workers) as task_runner:
                    yield task_runner
                return
            if runner == "thread":
                task_runner = ThreadPoolTaskRunner(max_workers=workers)
            else:
                threads = threads_per_worker(settings.available_cores(), workers)
                task_runner = PreloadedProcessPoolTaskRunner(
                    max_workers=workers, initializer=start_fold_process, initargs=(threads,)
                )
            with task_runner:
                yield task_runner
        finally:
            # The folds' logs reach the server in this process's batches, sent every 2 s and otherwise when
            # the process exits, after the run's final state: send them before the flow goes on.
            APILogWorker.drain_all(timeout=10)
