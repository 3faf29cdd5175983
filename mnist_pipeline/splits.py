"""Index arrays that select rows: cross-validation folds and stratified subsets. No copies."""

import numpy as np

from mnist_pipeline.errors import PipelineError


def kfold_indices(n_samples: int, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train_index, validation_index) per fold: KFold(folds, shuffle=True, random_state=seed)."""
    if folds < 2:
        raise PipelineError(f"folds must be >= 2, got folds={folds}")
    if n_samples < folds:
        raise PipelineError(f"folds must be <= the number of images ({n_samples}), got folds={folds}")
    from sklearn.model_selection import KFold  # not at the top: fold processes import this module too

    splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.empty((n_samples, 0))))


def stratified_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted indices of `size` rows drawn at random with the class proportions of `labels`.

    Each class gets its proportional share rounded down; the rows left over go to the classes
    with the largest remainders.
    """
    n_samples = len(labels)
    classes, counts = np.unique(labels, return_counts=True)
    if not len(classes) <= size <= n_samples:
        raise PipelineError(
            f"limit must be between {len(classes)} and {n_samples} (the images available), got limit={size}"
        )
    shares = counts * size / n_samples
    quotas = np.floor(shares).astype(int)
    quotas[np.argsort(quotas - shares, kind="stable")[: size - quotas.sum()]] += 1
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(labels == label), quota, replace=False) for label, quota in zip(classes, quotas)
    ]
    return np.sort(np.concatenate(chosen))
