from pathlib import Path

import numpy as np
import pytest

from mnist_pipeline.mnist import read_directory
from mnist_pipeline.preprocessing import add_channel_axis, apply_scaling, fit_scaling, one_hot
from mnist_pipeline.config import TrainingConfig
from mnist_pipeline.training import fit_and_validate

SUBSET = Path(__file__).parents[1] / "data" / "mnist-first-1000"
EPOCHS = 2


@pytest.fixture(scope="module")
def arrays():
    data = read_directory(SUBSET)
    x = apply_scaling(add_channel_axis(data.train_images[:300]), fit_scaling(data.train_images, "unit"))
    y = one_hot(data.train_labels[:300])
    return x[:240], y[:240], x[240:], y[240:]


@pytest.fixture(scope="module")
def run(arrays):
    """Train once with a report callback; returns (history, seconds, reported calls)."""
    calls = []
    config = TrainingConfig(epochs=EPOCHS, batch_size=32, seed=3)
    history, seconds = fit_and_validate(config, *arrays, report=lambda *args: calls.append(args))
    return history, seconds, calls


def test_history_has_one_value_per_epoch_for_each_metric(run):
    history, seconds, _ = run
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(values) == EPOCHS and all(isinstance(v, float) for v in values) for values in history.values())
    assert all(0.0 <= v <= 1.0 for v in history["accuracy"] + history["val_accuracy"])
    assert history["loss"][-1] < history["loss"][0]  # it learns
    assert seconds > 0


def test_report_is_called_once_per_epoch_counting_from_one(run):
    history, _, calls = run
    assert [(epoch, epochs) for epoch, epochs, _ in calls] == [(1, EPOCHS), (2, EPOCHS)]
    for epoch, _, logs in calls:
        for metric, values in history.items():
            assert logs[metric] == pytest.approx(values[epoch - 1])


def test_same_seed_gives_identical_history(arrays, run):
    history, _, _ = run
    again, _ = fit_and_validate(TrainingConfig(epochs=EPOCHS, batch_size=32, seed=3), *arrays)
    assert again == history
    overridden, _ = fit_and_validate(TrainingConfig(epochs=EPOCHS, batch_size=32, seed=99), *arrays, seed=3)
    assert overridden == history  # the seed argument overrides the config's


def test_different_seed_gives_a_different_history(arrays, run):
    history, _, _ = run
    other, _ = fit_and_validate(TrainingConfig(epochs=EPOCHS, batch_size=32, seed=4), *arrays)
    assert other != history


@pytest.mark.parametrize("field, value", [("epochs", 0), ("batch_size", 0), ("learning_rate", 0.0)])
def test_config_rejects_non_positive_settings(field, value):
    with pytest.raises(ValueError, match=field):
        TrainingConfig(**{field: value})
