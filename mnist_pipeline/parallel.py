"""How folds share the cores: worker processes, and TensorFlow's threads in each. No TensorFlow here."""

import os


def threads_per_worker(cores: int, workers: int) -> int:
    """TensorFlow threads per fold when `workers` folds share `cores` cores."""
    return max(1, cores // workers)


def configure_tensorflow_threads(intra_op_threads: int) -> None:
    """Cap TensorFlow's threads in this process: it reads these variables when it starts."""
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(intra_op_threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
