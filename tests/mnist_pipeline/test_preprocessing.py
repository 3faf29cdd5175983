import numpy as np
import pytest

from mnist_pipeline.errors import PipelineError
from mnist_pipeline.preprocessing import SCALINGS, add_channel_axis, apply_scaling, fit_scaling, one_hot


@pytest.fixture
def images():
    return np.random.default_rng(7).integers(0, 256, size=(40, 28, 28), dtype=np.uint8)


def test_add_channel_axis_is_a_view_with_a_trailing_axis(images):
    shaped = add_channel_axis(images)
    assert shaped.shape == (40, 28, 28, 1)
    assert np.shares_memory(shaped, images)
    np.testing.assert_array_equal(shaped[..., 0], images)


@pytest.mark.parametrize("shape", [(2, 28, 28, 1), (28, 28)])
def test_add_channel_axis_rejects_other_ranks(shape):
    with pytest.raises(ValueError, match="images must have shape") as error:
        add_channel_axis(np.zeros(shape, np.uint8))
    assert str(shape) in str(error.value)


def test_one_hot_rows_encode_the_labels():
    labels = np.array([0, 9, 3, 3, 7, 1], dtype=np.uint8)
    encoded = one_hot(labels)
    assert encoded.shape == (6, 10) and encoded.dtype == np.float32
    np.testing.assert_array_equal(encoded.sum(axis=1), np.ones(6))
    np.testing.assert_array_equal(encoded.argmax(axis=1), labels)
    assert set(np.unique(encoded)) == {0.0, 1.0}


@pytest.mark.parametrize("bad", [10, -1])
def test_one_hot_rejects_out_of_range_labels(bad):
    with pytest.raises(ValueError, match=r"labels must be in \[0, 10\)") as error:
        one_hot(np.array([0, bad, 5]))
    assert str(bad) in str(error.value)


def test_unit_scaling_divides_by_255(images):
    stats = fit_scaling(images, "unit")
    scaled = apply_scaling(images, stats)
    assert scaled.dtype == np.float32 and scaled.shape == images.shape
    assert 0.0 <= scaled.min() and scaled.max() <= 1.0
    np.testing.assert_allclose(scaled, images / 255.0, rtol=1e-6)


def test_apply_scaling_does_not_modify_its_input(images):
    original = images.copy()
    apply_scaling(images, fit_scaling(images, "standardize"))
    np.testing.assert_array_equal(images, original)


def test_center_scaling_has_zero_mean_on_the_fit_rows(images):
    scaled = apply_scaling(images, fit_scaling(images, "center"))
    assert abs(scaled.mean(dtype=np.float64)) < 1e-5
    # centering only shifts: the spread of x / 255 is unchanged
    np.testing.assert_allclose(scaled.std(dtype=np.float64), (images / 255.0).std(), rtol=1e-5)


def test_standardize_scaling_has_zero_mean_unit_std_on_the_fit_rows(images):
    scaled = apply_scaling(images, fit_scaling(images, "standardize"))
    assert abs(scaled.mean(dtype=np.float64)) < 1e-5
    assert scaled.std(dtype=np.float64) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("mode", ["center", "standardize"])
def test_stats_fitted_with_an_index_use_only_those_rows(mode):
    rng = np.random.default_rng(3)
    dark = rng.integers(0, 100, size=(30, 28, 28), dtype=np.uint8)  # the training rows
    bright = rng.integers(150, 256, size=(10, 28, 28), dtype=np.uint8)  # held-out rows, very different
    images = np.concatenate([dark, bright])[rng.permutation(40)]
    train = np.flatnonzero(images.mean(axis=(1, 2)) < 128)
    assert len(train) == 30

    fitted = fit_scaling(images, mode, train)
    assert fitted == fit_scaling(images[train], mode)
    everything = fit_scaling(images, mode)
    assert fitted.mean < everything.mean - 0.1
    if mode == "standardize":
        assert fitted.std < everything.std
    scaled_train = apply_scaling(images[train], fitted)
    assert abs(scaled_train.mean(dtype=np.float64)) < 1e-5
    assert abs(apply_scaling(images, fitted).mean(dtype=np.float64)) > 0.1


def test_unit_scaling_ignores_the_index(images):
    assert fit_scaling(images, "unit", np.arange(5)) == fit_scaling(images, "unit")


@pytest.mark.parametrize("mode", ["minmax", "Unit", ""])
def test_invalid_scaling_raises_naming_it(images, mode):
    with pytest.raises(PipelineError, match="scaling must be one of") as error:
        fit_scaling(images, mode)
    message = str(error.value)
    assert f"scaling={mode!r}" in message
    assert all(known in message for known in SCALINGS)


def test_standardize_refuses_images_without_variation():
    blank = np.full((4, 28, 28), 7, dtype=np.uint8)
    with pytest.raises(PipelineError, match="standardize.*pixels vary"):
        fit_scaling(blank, "standardize")
