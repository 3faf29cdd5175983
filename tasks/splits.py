"""Fold splitting as a task: index arrays, never copies of the images."""

import numpy as np
from prefect import task

from mnist_pipeline.splits import kfold_indices


@task
def split_folds(n_samples: int, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return kfold_indices(n_samples, folds, seed)
