import numpy as np
import pytest
from sklearn.model_selection import KFold

from mnist_pipeline.errors import PipelineError
from mnist_pipeline.splits import kfold_indices, stratified_subset

CASES = [(10, 2, 0), (23, 5, 1), (100, 5, 42), (7, 7, 3)]


@pytest.mark.parametrize("n, folds, seed", CASES)
def test_kfold_partitions_the_rows(n, folds, seed):
    splits = kfold_indices(n, folds, seed)
    assert len(splits) == folds
    everything = set(range(n))
    validations = []
    for train, validation in splits:
        assert set(train).isdisjoint(validation)
        assert set(train) | set(validation) == everything
        assert len(train) + len(validation) == n
        validations.append(validation)
    all_validation = np.concatenate(validations)
    assert len(all_validation) == n and set(all_validation) == everything  # disjoint, covering
    sizes = [len(v) for v in validations]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("n, folds, seed", CASES)
def test_kfold_is_seeded(n, folds, seed):
    def as_lists(splits):
        return [(t.tolist(), v.tolist()) for t, v in splits]

    assert as_lists(kfold_indices(n, folds, seed)) == as_lists(kfold_indices(n, folds, seed))
    assert as_lists(kfold_indices(n, folds, seed)) != as_lists(kfold_indices(n, folds, seed + 1))


@pytest.mark.parametrize("n, folds, seed", CASES)
def test_kfold_matches_the_study_s_sklearn_kfold(n, folds, seed):
    expected = KFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros((n, 1)))
    for (train, validation), (want_train, want_validation) in zip(kfold_indices(n, folds, seed), expected, strict=True):
        np.testing.assert_array_equal(train, want_train)
        np.testing.assert_array_equal(validation, want_validation)


@pytest.mark.parametrize("folds", [1, 0, -3])
def test_kfold_rejects_fewer_than_two_folds(folds):
    with pytest.raises(PipelineError, match=f"folds must be >= 2, got folds={folds}"):
        kfold_indices(10, folds, 1)


def test_kfold_rejects_more_folds_than_rows():
    with pytest.raises(PipelineError, match=r"folds must be <= the number of images \(4\), got folds=5"):
        kfold_indices(4, 5, 1)


@pytest.fixture
def labels():
    """Imbalanced classes: class c has 10 * (c + 1) rows, shuffled."""
    labels = np.repeat(np.arange(10), 10 * np.arange(1, 11))
    return np.random.default_rng(0).permutation(labels)


@pytest.mark.parametrize("size", [10, 37, 275, 540])
def test_stratified_subset_keeps_class_proportions(labels, size):
    index = stratified_subset(labels, size, seed=1)
    assert len(index) == size
    assert np.all(np.diff(index) > 0)  # sorted and unique
    assert 0 <= index[0] and index[-1] < len(labels)
    counts = np.bincount(labels[index], minlength=10)
    expected = size * np.bincount(labels, minlength=10) / len(labels)
    assert np.all(np.abs(counts - expected) <= 1), (counts, expected)


def test_stratified_subset_of_everything_is_every_row(labels):
    np.testing.assert_array_equal(stratified_subset(labels, len(labels), seed=1), np.arange(len(labels)))


@pytest.mark.parametrize("size", [541, 549])
def test_stratified_subset_accepts_sizes_within_one_image_per_class_of_all(labels, size):
    # The stated range is [classes, n]; leaving out fewer rows than there are classes must work too.
    index = stratified_subset(labels, size, seed=1)
    assert len(index) == size and len(np.unique(index)) == size


def test_stratified_subset_is_seeded(labels):
    np.testing.assert_array_equal(stratified_subset(labels, 100, seed=5), stratified_subset(labels, 100, seed=5))
    assert not np.array_equal(stratified_subset(labels, 100, seed=5), stratified_subset(labels, 100, seed=6))


@pytest.mark.parametrize("size", [9, 0, 551])
def test_stratified_subset_rejects_sizes_out_of_range(labels, size):
    with pytest.raises(PipelineError, match=rf"limit must be between 10 and 550 .*got limit={size}"):
        stratified_subset(labels, size, seed=1)
