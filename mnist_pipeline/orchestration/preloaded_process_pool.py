"""Prefect's process pool, with workers forked from a server process that has imported TensorFlow once.

`ProcessPoolTaskRunner` spawns every worker: a fresh interpreter that imports TensorFlow and Keras
(4-6 s of CPU each) and Prefect (about 1 s) before its first fold, while the other workers do the
same on the same two cores. Here a multiprocessing forkserver imports them once and forks each worker
from itself.

Importing runs no TensorFlow op: TensorFlow creates its eager context and its thread pools at the
first op, so each worker creates its own after the fork, with its own thread settings (a test checks
that a worker finds no context). Importing Prefect starts no thread. This project's modules are not
preloaded: they read settings from the environment when imported (the result storage), and the
forkserver's environment is the one of the moment it started. So a worker first takes this process's
environment, as the pool starts, and Prefect's settings from it; then it imports them, as a spawned
worker would.
"""

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.util import Finalize
from typing import Any, Self

from prefect.context import refresh_global_settings_context
from prefect.events.worker import EventsWorker
from prefect.task_runners import ProcessPoolTaskRunner, _initialize_process_pool_worker

PRELOADED = ["tensorflow", "keras", "prefect"]


def start_forked_worker(environment: dict[str, str], initializer: Callable[..., None] | None, initargs: tuple) -> None:
    os.environ.clear()
    os.environ.update(environment)
    refresh_global_settings_context()
    # Prefect sends a worker's last events at threading's shutdown, which a forked worker reaches only after
    # multiprocessing has closed its queue to this process (and then ends in os._exit): send them first.
    Finalize(None, EventsWorker.drain_all, kwargs={"timeout": 10}, exitpriority=100)
    if initializer is not None:
        initializer(*initargs)


class PreloadedProcessPoolTaskRunner(ProcessPoolTaskRunner):
    """`ProcessPoolTaskRunner` whose workers fork from a forkserver that imported `PRELOADED`."""

    def __enter__(self) -> Self:
        super().__enter__()
        if "forkserver" not in multiprocessing.get_all_start_methods():  # Windows: Prefect's spawned workers
            return self
        # Prefect's runner always spawns; its executor has started no process yet (they start on submit).
        self._executor.shutdown()
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOADED)
        worker_setup: tuple[Any, ...] = (dict(os.environ), self._initializer, self._initargs)
        self._executor = ProcessPoolExecutor(
            max_workers=self._max_workers,
            mp_context=context,
            initializer=_initialize_process_pool_worker,
            initargs=(self._subprocess_message_queue, start_forked_worker, worker_setup),
        )
        return self
