"""How folds share the cores: worker processes, and TensorFlow's threads in each. No TensorFlow here."""

import os


def fold_workers(folds: int, cores: int) -> int:
    """The fewest worker processes that finish `folds` single-thread folds soonest on `cores` cores.

    Folds run in rounds of `workers` at once; a round of m folds takes max(m, cores) / cores
    fold-times, as the m processes share the cores. 5 folds on 2 cores: 2 workers take 3 fold-times
    (the fifth fold trains alone, one core idle), 3 workers 1.5 + 1 = 2.5, as few as 5 workers.
    With fewer folds than cores, each fold gets a worker (and several threads).
    """
    if folds <= cores:
        return folds

    def fold_times(workers: int) -> float:
        rounds, left = divmod(folds, workers)
        return rounds * max(workers, cores) / cores + (max(left, cores) / cores if left else 0)

    return min(range(cores, folds + 1), key=lambda workers: (fold_times(workers), workers))


def threads_per_worker(cores: int, workers: int) -> int:
    """TensorFlow threads per fold when `workers` folds share `cores` cores."""
    return max(1, cores // workers)


def configure_tensorflow_threads(intra_op_threads: int) -> None:
    """Cap TensorFlow's threads in this process: it reads these variables when its first op creates its
    thread pools (also in a process forked after importing it)."""
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(intra_op_threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
