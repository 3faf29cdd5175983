"""Index arrays that select rows: cross-validation folds and stratified subsets. No copies."""

import numpy as np
from sklearn.model_selection import KFold, train_test_split


def kfold_indices(n_samples: int, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train_index, validation_index) per fold: KFold(folds, shuffle=True, random_state=seed)."""
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got folds={folds}")
    if n_samples < folds:
        raise ValueError(f"folds must be <= the number of images ({n_samples}), got folds={folds}")
    splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.empty((n_samples, 0))))


def stratified_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted indices of `size` rows with the class proportions of `labels`."""
    n_samples = len(labels)
    classes = len(np.unique(labels))
    if not classes <= size <= n_samples:
        raise ValueError(f"limit must be between {classes} and {n_samples} (the images available), got limit={size}")
    if size == n_samples:
        return np.arange(n_samples)
    index, _ = train_test_split(np.arange(n_samples), train_size=size, stratify=labels, random_state=seed)
    return np.sort(index)
