"""Prefect caching across runs for the data tasks (array handles) and the fold results.

A task's cache key is built from small values only: the task's name, a digest of the source of the
task's module and of every project module it imports (so editing any of them invalidates its
results, and editing another module does not), the cache location and its parameters, where a handle counts by its digest and
an index array by the digest of its bytes. The result record is JSON of a small pydantic model, kept in a storage
block that reads only records of this project's serializer (`result_records`). Reading a record verifies the array
and model files it names: a deleted or corrupted one makes the record unreadable, which Prefect treats as a cache
miss, so the task runs again and rewrites it.
"""

import hashlib
import json
from typing import Any

import numpy as np
from prefect.context import TaskRunContext
from pydantic import BaseModel

from mnist_pipeline import settings
from mnist_pipeline.arrays import ArrayHandle
from mnist_pipeline.orchestration.result_records import (
    TrustedLocalResults,
    TrustedRemoteResults,
    VerifiedHandlesSerializer,
)
from mnist_pipeline.shared_store import open_store
from mnist_pipeline.source_digest import code_version


def _small(value: Any) -> Any:
    if isinstance(value, ArrayHandle):
        return value.sha256
    if isinstance(value, BaseModel):
        return {name: _small(item) for name, item in value}
    if isinstance(value, np.ndarray):
        return hashlib.sha256(np.ascontiguousarray(value).data).hexdigest()
    if isinstance(value, (list, tuple)):
        return [_small(item) for item in value]
    return value


def array_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    payload = {
        "task": context.task.name,
        "code": code_version(context.task.fn.__module__),
        "cache": settings.cache_url(),
        "parameters": {name: _small(value) for name, value in parameters.items()},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def results_block_name(url: str) -> str:
    return f"mnist-results-{hashlib.sha256(url.encode()).hexdigest()[:16]}"


def _results_block(url: str) -> type[TrustedLocalResults] | type[TrustedRemoteResults]:
    return TrustedRemoteResults if settings.is_remote(url) else TrustedLocalResults


def shared_result_storage() -> str | None:
    """Prefect's storage of the cached tasks' result records: `results/` under MNIST_ARTIFACTS_URL when it is set
    (a fold finished on one machine is then Cached on every other), else None: Prefect's own local storage, this
    user's alone.

    A task takes a folder, or a block saved on the server: Prefect refuses an unsaved one, since the processes
    and Dask workers that run the task load its storage from the server. So the shared results are the name of a
    block that reads only this project's records (`result_records`), which `save_shared_result_storage` saves on
    whichever server the run uses (the CLI's temporary one or a real one). Read when this module is imported:
    MNIST_ARTIFACTS_URL belongs in the environment of every process (flow runs, workers)."""
    url = settings.results_url()
    if url is None:
        return None
    return f"{_results_block(url).get_block_type_slug()}/{results_block_name(url)}"


def save_shared_result_storage() -> None:
    """Checks the shared store and saves its results block on the run's server, unless there already: the first
    step of every flow that runs cached tasks."""
    url = settings.results_url()
    if url is None:
        return
    open_store(settings.artifacts_url())  # a bad setting fails here in one line, before anything is written
    block, name = _results_block(url), results_block_name(url)
    try:
        block.load(name)
    except ValueError:  # not saved on this server yet
        block(basepath=url).save(name, overwrite=True)


CACHED_RESULTS = {
    "cache_key_fn": array_cache_key,
    "persist_result": True,
    "result_serializer": VerifiedHandlesSerializer(),
    "result_storage": shared_result_storage(),
}


def per_run_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Like `array_cache_key`, within one flow run only (its root run): a run started again after a
    suspension finds the results of its first start, and no other run does."""
    from prefect.runtime import flow_run

    return array_cache_key(context, {**parameters, "root_flow_run": flow_run.root_flow_run_id})


PER_RUN_RESULTS = {**CACHED_RESULTS, "cache_key_fn": per_run_cache_key}
