"""Verdicts over windows of real test digits against a reference built from the other ones, and the reference's
bytes: too few predictions or labels, no reference, a drop in accuracy, a rotation, a damaged reference."""

import numpy as np
import pytest
from scipy import ndimage

from mnist_pipeline.mnist import read_directory
from mnist_pipeline.monitoring.reference import Reference, ReferenceError, build_reference, in_reference_half
from mnist_pipeline.monitoring.verdict import Thresholds, Verdict, Window, judge
from tests.conftest import SUBSET_DIR


def answers(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Softmax outputs of a model that is right and confident on about 98% of the digits."""
    probabilities = rng.dirichlet(np.full(10, 0.3), len(labels)) * 0.1
    right = np.where(rng.random(len(labels)) < 0.98, labels, (labels + 1) % 10)
    probabilities[np.arange(len(labels)), right] += rng.uniform(0.6, 0.9, len(labels))
    return probabilities / probabilities.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def digits():
    """A reference from the reference half of the shipped subset's 1,000 training digits; the other half."""
    mnist = read_directory(SUBSET_DIR)
    images, labels = mnist.train_images, mnist.train_labels
    half = in_reference_half(images)
    reference = build_reference(images[half], labels[half], answers(labels[half], np.random.default_rng(0)))
    return reference, images[~half], labels[~half]


def window(images, labels, seed, labeled=None) -> Window:
    probabilities = answers(labels, np.random.default_rng(seed))
    labeled = len(labels) if labeled is None else labeled
    return Window(images, probabilities, probabilities.argmax(axis=1)[:labeled], labels[:labeled])


def test_the_reference_half_is_about_half_and_fixed_by_the_images():
    mnist = read_directory(SUBSET_DIR)
    half = in_reference_half(mnist.train_images)
    assert 400 < half.sum() < 600
    assert (in_reference_half(mnist.train_images[::-1]) == half[::-1]).all()


def test_the_same_digits_are_ok_and_the_report_carries_the_accuracy_with_its_interval(digits):
    reference, images, labels = digits
    report = judge(window(images[:300], labels[:300], 1), reference, Thresholds())
    assert report.verdict is Verdict.OK, report.reason
    low, high = report.interval
    assert low < report.live_accuracy < high and set(report.tests) >= {"accuracy", "images", "digit statistics"}
    assert report.record()["tests"]["accuracy"]["alarm"] is False


def test_too_few_predictions_or_labels_say_which(digits):
    reference, images, labels = digits
    few = judge(window(images[:20], labels[:20], 1), reference, Thresholds())
    assert few.verdict is Verdict.INSUFFICIENT and few.reason.startswith("20 predictions") and not few.tests
    unlabeled = judge(window(images[:300], labels[:300], 1, labeled=10), reference, Thresholds())
    assert unlabeled.verdict is Verdict.INSUFFICIENT and unlabeled.reason.startswith("10 labels")
    assert "accuracy" not in unlabeled.tests


def test_no_reference_is_a_verdict_of_its_own():
    report = judge(Window(*(np.zeros((0,)),) * 4), None, Thresholds(), why_no_reference="v0001: no model file")
    assert (report.verdict, report.reason) == (Verdict.NO_REFERENCE, "v0001: no model file")


def test_wrong_answers_are_degraded_and_rotated_digits_are_drift_that_names_the_box(digits):
    reference, images, labels = digits
    wrong = window(images[:300], labels[:300], 1)
    wrong = wrong._replace(labels=np.where(np.arange(300) % 6 == 0, (wrong.labels + 1) % 10, wrong.labels))
    report = judge(wrong, reference, Thresholds())
    assert report.verdict is Verdict.DEGRADED and report.reason.startswith("live accuracy below")
    rotated = ndimage.rotate(images[:300], 30, axes=(1, 2), reshape=False, order=1)
    report = judge(window(rotated, labels[:300], 1), reference, Thresholds())
    assert report.verdict is Verdict.DRIFT and report.tests["digit statistics"].alarm, report.reason
    assert "box" in report.tests["digit statistics"].detail


def test_a_reference_survives_its_bytes_and_damaged_bytes_are_refused(digits):
    reference = digits[0]
    data = reference.to_bytes()
    assert len(data) < 3_000_000
    again = Reference.from_bytes(data)
    assert again.accuracy == reference.accuracy and np.array_equal(again.projected, reference.projected)
    with pytest.raises(ReferenceError, match="not a monitoring reference"):
        Reference.from_bytes(data[: len(data) // 2])
