import keras
import numpy as np
import pytest

from mnist_pipeline.evaluation import test_metrics as compute_metrics  # not collected as a test

# Six samples of four classes; class 3 never occurs and is never predicted.
PROBABILITIES = np.array(
    [
        [0.7, 0.2, 0.1, 0.0],  # true 0, predicted 0
        [0.2, 0.5, 0.3, 0.0],  # true 0, predicted 1
        [0.1, 0.8, 0.1, 0.0],  # true 1, predicted 1
        [0.1, 0.6, 0.3, 0.0],  # true 1, predicted 1
        [0.3, 0.3, 0.4, 0.0],  # true 2, predicted 2
        [0.6, 0.1, 0.3, 0.0],  # true 2, predicted 0
    ]
)
LABELS = np.array([0, 0, 1, 1, 2, 2], np.uint8)  # uint8, as MNIST's labels are

# By hand: class 0 is predicted for samples 0 and 5 (one right) and is true for 0 and 1 (one found):
# precision 1/2, recall 1/2, F1 1/2. Class 1 is predicted for 1, 2, 3 (two right), true for 2 and 3
# (both found): precision 2/3, recall 1, F1 2*(2/3)/(5/3) = 4/5. Class 2 is predicted for 4 only
# (right), true for 4 and 5: precision 1, recall 1/2, F1 2*(1/2)/(3/2) = 2/3. Class 3: all 0.
PER_CLASS = [
    {"digit": 0, "precision": 1 / 2, "recall": 1 / 2, "f1": 1 / 2, "support": 2},
    {"digit": 1, "precision": 2 / 3, "recall": 1.0, "f1": 4 / 5, "support": 2},
    {"digit": 2, "precision": 1.0, "recall": 1 / 2, "f1": 2 / 3, "support": 2},
    {"digit": 3, "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
]
CONFUSION = [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]  # rows true, columns predicted


def test_metrics_of_a_hand_worked_example():
    metrics = compute_metrics(PROBABILITIES, LABELS)
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    # the probabilities given to the true classes: 0.7, 0.2, 0.8, 0.6, 0.4, 0.3
    assert metrics["loss"] == pytest.approx(-np.log([0.7, 0.2, 0.8, 0.6, 0.4, 0.3]).mean())
    assert metrics["confusion_matrix"] == CONFUSION
    assert [row["digit"] for row in metrics["per_class"]] == [0, 1, 2, 3]
    for row, expected in zip(metrics["per_class"], PER_CLASS, strict=True):
        assert row == pytest.approx(expected), row["digit"]
        assert type(row["support"]) is int and type(row["precision"]) is float  # JSON-ready


def test_loss_matches_keras_categorical_cross_entropy():
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(10), size=50).astype(np.float32)
    labels = rng.integers(0, 10, 50)
    expected = keras.ops.mean(keras.losses.categorical_crossentropy(np.eye(10)[labels], probabilities))
    assert compute_metrics(probabilities, labels)["loss"] == pytest.approx(float(expected), rel=1e-5)


def test_a_zero_probability_for_the_true_class_gives_a_finite_loss():
    probabilities = np.array([[0.0, 1.0], [1.0, 0.0]])
    metrics = compute_metrics(probabilities, np.array([0, 0]))
    # clipped at 1e-7 as Keras does: -(log 1e-7 + log 1) / 2
    assert metrics["loss"] == pytest.approx(-np.log(1e-7) / 2)
    assert metrics["accuracy"] == 0.5


def test_invariants_on_random_predictions():
    rng = np.random.default_rng(1)
    probabilities = rng.dirichlet(np.ones(10), size=300)
    labels = rng.integers(0, 10, 300)
    metrics = compute_metrics(probabilities, labels)
    confusion = np.array(metrics["confusion_matrix"])
    assert confusion.shape == (10, 10) and confusion.sum() == 300
    assert np.trace(confusion) / 300 == pytest.approx(metrics["accuracy"])
    assert list(confusion.sum(axis=1)) == [row["support"] for row in metrics["per_class"]]
    assert list(confusion.sum(axis=1)) == list(np.bincount(labels, minlength=10))
    for digit, row in enumerate(metrics["per_class"]):
        correct = confusion[digit, digit]
        assert row["recall"] == pytest.approx(correct / confusion[digit].sum())
        assert row["precision"] == pytest.approx(correct / confusion[:, digit].sum())
    perfect = compute_metrics(np.eye(10)[labels], labels)
    assert perfect["accuracy"] == 1.0 and perfect["loss"] == pytest.approx(0.0, abs=1e-9)
    assert all(row["f1"] == 1.0 for row in perfect["per_class"])
