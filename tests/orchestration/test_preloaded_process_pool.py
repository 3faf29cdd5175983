import os
import sys

import cloudpickle
import numpy as np
from prefect import flow, task
from prefect.context import refresh_global_settings_context

from mnist_pipeline.orchestration import preloaded_process_pool
from mnist_pipeline.orchestration.preloaded_process_pool import start_forked_worker
from mnist_pipeline.orchestration.runners import fold_task_runner

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the fold processes cannot import this test module

ROUNDS, WORKERS = 3, 2


@task
def worker_at_start() -> dict:
    """How a worker found itself, running no TensorFlow op: the first op in any process creates its context."""
    tensorflow_imported = "tensorflow" in sys.modules
    from tensorflow.python.eager import context

    return {
        "pid": os.getpid(),
        "parent": os.getppid(),
        "tensorflow_imported": tensorflow_imported,
        "no_tensorflow_context": context.context_safe() is None,
        "probe": os.environ.get("MNIST_TEST_PROBE"),
    }


@task
def fit_a_small_model(seed: int) -> int:
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    images, labels = np.random.default_rng(seed).random((256, 8)), np.arange(256) % 2
    model.fit(images, labels, epochs=2, batch_size=32, verbose=0)
    return os.getpid()


@flow
def pools_in_turn() -> list[tuple[list[dict], list[int]]]:
    """Each round: a new pool whose workers report how they started, then each fits a model (timed out
    after 120 s: a worker that deadlocked on a lock taken before its fork never answers)."""
    rounds = []
    for round_number in range(ROUNDS):
        with fold_task_runner("process", WORKERS) as runner:
            starts = [
                future.result(timeout=120) for future in [runner.submit(worker_at_start, {}) for _ in range(WORKERS)]
            ]
            fits = runner.map(fit_a_small_model, {"seed": [round_number * WORKERS + n for n in range(WORKERS)]})
            rounds.append((starts, [future.result(timeout=120) for future in fits]))
    return rounds


def test_workers_fork_from_one_server_with_tensorflow_imported_no_op_run_and_train_without_deadlock(
    prefect_server, monkeypatch
):
    monkeypatch.setenv("MNIST_TEST_PROBE", "set before the pools started")
    rounds = pools_in_turn()
    starts = [start for round_starts, _ in rounds for start in round_starts]
    assert all(start["tensorflow_imported"] and start["no_tensorflow_context"] for start in starts), starts
    [forkserver] = {start["parent"] for start in starts}  # one process forked them all, and not this one
    assert forkserver != os.getpid()
    assert {start["probe"] for start in starts} == {"set before the pools started"}
    for round_starts, fitted_in in rounds:
        assert len(fitted_in) == WORKERS and set(fitted_in) <= {start["pid"] for start in round_starts}
    assert len({start["pid"] for start in starts}) >= ROUNDS  # every round forked workers of its own


def test_a_forked_worker_takes_the_environment_of_the_process_that_started_the_pool():
    saved = dict(os.environ)
    try:
        os.environ["MNIST_FORKSERVER_ONLY"] = "set when the forkserver started, unset since"
        start_forked_worker({"MNIST_DATA_DIR": "/data/mnist"}, None, ())
        assert dict(os.environ) == {"MNIST_DATA_DIR": "/data/mnist"}
    finally:
        os.environ.clear()
        os.environ.update(saved)
        refresh_global_settings_context()


@flow
def one_worker_start() -> dict:
    with fold_task_runner("process", 1) as runner:
        return runner.submit(worker_at_start, {}).result(timeout=120)


def test_where_there_is_no_forkserver_the_workers_are_spawned_as_prefect_spawns_them(prefect_server, monkeypatch):
    monkeypatch.setattr(preloaded_process_pool.multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    start = one_worker_start()
    assert start["parent"] == os.getpid() and not start["tensorflow_imported"]
