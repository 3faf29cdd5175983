import gc
from pathlib import Path

import numpy as np
import pytest

from mnist_pipeline.arrays import save_array
from mnist_pipeline.config import TrainingConfig
from mnist_pipeline.mnist import read_directory
from mnist_pipeline.preprocessing import add_channel_axis, apply_scaling, fit_scaling, one_hot
from mnist_pipeline.splits import kfold_indices
from mnist_pipeline.training import fit_and_validate, train_model

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


@pytest.mark.parametrize("model, final_rate", [("baseline", 0.02), ("improved", 0.0)])
def test_improved_decays_its_learning_rate_over_the_run_while_the_study_s_models_keep_it(arrays, model, final_rate):
    x, y, _, _ = arrays
    config = TrainingConfig(model=model, epochs=2, batch_size=64, learning_rate=0.02)
    trained, history, _ = train_model(config, x, y)
    optimizer = trained.optimizer
    assert int(optimizer.iterations) == 2 * 4  # 240 images in batches of 64: 4 steps an epoch
    assert float(optimizer.learning_rate) == pytest.approx(final_rate, abs=1e-7)
    assert np.all(np.isfinite(history["loss"]))


@pytest.mark.parametrize(
    "model, epochs, learning_rate", [("baseline", 10, 0.01), ("deeper", 10, 0.01), ("improved", 15, 0.05)]
)
def test_config_left_without_epochs_or_learning_rate_takes_the_model_s_own(model, epochs, learning_rate):
    config = TrainingConfig(model=model)
    assert (config.epochs, config.learning_rate) == (epochs, learning_rate)
    given = TrainingConfig(model=model, epochs=3, learning_rate=0.2)
    assert (given.epochs, given.learning_rate) == (3, 0.2)


def anonymous_memory() -> int:
    """Bytes of this process's private memory (not the pages of memory-mapped files)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("RssAnon:"))


def test_training_fold_after_fold_keeps_no_copy_of_the_data(tmp_path):
    """A fold worker trains several folds on memory-mapped arrays, as train_fold does: the fold's
    rows are copied for that fold only, so memory must not grow by such a copy per fold."""
    rng = np.random.default_rng(0)
    images = save_array(rng.random((15_000, 28, 28, 1), dtype=np.float32), tmp_path).open()
    labels = save_array(one_hot(rng.integers(0, 10, 15_000)), tmp_path).open()
    folds = kfold_indices(len(images), 5, seed=1)[:4]
    config = TrainingConfig(epochs=1, batch_size=32)
    after_each_fold = []
    for fold, (train_index, validation_index) in enumerate(folds, start=1):
        x_train, y_train = images[train_index], labels[train_index]
        x_val, y_val = images[validation_index], labels[validation_index]
        fit_and_validate(config, x_train, y_train, x_val, y_val, seed=fold)
        copy_size = x_train.nbytes + x_val.nbytes
        del x_train, y_train, x_val, y_val
        gc.collect()
        after_each_fold.append(anonymous_memory())
    growth_per_fold = (after_each_fold[-1] - after_each_fold[0]) / (len(folds) - 1)
    assert growth_per_fold < copy_size / 2, f"memory grew by {growth_per_fold / 2**20:.0f} MB per fold"
