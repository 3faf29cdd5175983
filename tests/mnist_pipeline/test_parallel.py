import os

import pytest

from mnist_pipeline.parallel import configure_tensorflow_threads, fold_workers, threads_per_worker


@pytest.mark.parametrize(
    "cores, workers, threads", [(2, 2, 1), (2, 1, 2), (16, 2, 8), (16, 5, 3), (2, 5, 1), (1, 1, 1)]
)
def test_cores_are_shared_among_workers_with_at_least_one_thread_each(cores, workers, threads):
    assert threads_per_worker(cores, workers) == threads


def test_tensorflow_threads_are_set_through_its_environment_variables(monkeypatch):
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    monkeypatch.delenv("TF_NUM_INTEROP_THREADS", raising=False)
    configure_tensorflow_threads(3)
    assert (os.environ["TF_NUM_INTRAOP_THREADS"], os.environ["TF_NUM_INTEROP_THREADS"]) == ("3", "1")


@pytest.mark.parametrize(
    "folds, cores, workers",
    [(5, 2, 3), (4, 2, 2), (10, 2, 2), (3, 2, 3), (2, 2, 2), (5, 4, 5), (8, 4, 4), (2, 16, 2), (5, 1, 1), (7, 3, 4)],
)
def test_fold_workers_pack_the_rounds_of_folds_onto_the_cores(folds, cores, workers):
    assert fold_workers(folds, cores) == workers
