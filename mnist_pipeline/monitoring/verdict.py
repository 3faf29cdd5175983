"""The tests over one window of served predictions, against the version's reference, and what they add up to."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

import numpy as np

from mnist_pipeline.monitoring import statistics
from mnist_pipeline.monitoring.digits import STATISTICS, digit_statistics
from mnist_pipeline.monitoring.reference import Reference
from mnist_pipeline.monitoring.statistics import TestResult

# The families of tests, which share the window's false-alarm budget `alpha` equally (Bonferroni).
FAMILIES = ("accuracy", "predicted mix", "top probability", "softmax outputs", "images", "digit statistics")
INPUT_DRIFT = ("images", "digit statistics")
PROBABILITY_DECIMALS = 4


class Verdict(StrEnum):
    OK = "ok"
    DRIFT = "drift"
    DEGRADED = "degraded"
    INSUFFICIENT = "insufficient"
    NO_REFERENCE = "no-reference"


@dataclass(frozen=True)
class Thresholds:
    """What a window needs to be judged, and the false-alarm rate allowed per window (docs/MONITORING.md)."""

    alpha: float = 0.01
    min_predictions: int = 100
    min_labels: int = 50

    @property
    def per_family(self) -> float:
        return self.alpha / len(FAMILIES)


class Window(NamedTuple):
    """Served predictions: the prepared uint8 digits (n, 28, 28) and the softmax answered for them (n, 10); and of
    those that got a label, the digit answered and the right one."""

    images: np.ndarray
    probabilities: np.ndarray
    answered: np.ndarray
    labels: np.ndarray


class Report(NamedTuple):
    verdict: Verdict
    reason: str
    predictions: int
    labels: int
    live_accuracy: float | None = None
    interval: tuple[float, float] | None = None
    reference_accuracy: float | None = None
    tests: dict[str, TestResult] = {}

    def record(self) -> dict[str, Any]:
        return {
            "verdict": str(self.verdict),
            "reason": self.reason,
            "predictions": self.predictions,
            "labels": self.labels,
            "live_accuracy": self.live_accuracy,
            "interval": list(self.interval) if self.interval else None,
            "reference_accuracy": self.reference_accuracy,
            "tests": {name: test.record() for name, test in self.tests.items()},
        }


def comparable(probabilities: np.ndarray) -> np.ndarray:
    """Probabilities rounded alike on both sides: the reference keeps float32, the log may keep fewer digits, and
    the KS tests would take the rounding of saturated answers (0.99999994 against 1.0) for a shift."""
    return np.round(probabilities.astype(np.float64), PROBABILITY_DECIMALS)


def drift_tests(window: Window, reference: Reference, threshold: float, seed: int = 0) -> dict[str, TestResult]:
    """The tests that need no labels: the model's answers and the images, window against reference."""
    answered, expected = comparable(window.probabilities), comparable(reference.probabilities)
    return {
        "predicted mix": statistics.mix_differs(answered.argmax(axis=1), expected.argmax(axis=1), threshold),
        "top probability": statistics.distribution_differs(
            "top probability", answered.max(axis=1), expected.max(axis=1), threshold
        ),
        "softmax outputs": statistics.columns_differ(
            "softmax outputs", answered, expected, [f"p({d})" for d in range(10)], threshold
        ),
        "images": statistics.mmd_differs(
            "images", reference.project(window.images), reference.projected, threshold, seed
        ),
        "digit statistics": statistics.columns_differ(
            "digit statistics", digit_statistics(window.images), reference.statistics, STATISTICS, threshold
        ),
    }


def judge(
    window: Window, reference: Reference | None, thresholds: Thresholds, seed: int = 0, why_no_reference: str = ""
) -> Report:
    """The window's tests and verdict: degraded when the live accuracy is significantly below the reference's, or
    when the inputs drifted and the model's confidence dropped; drift for any other alarm; insufficient when
    there are too few predictions (nothing tested) or too few labels and no alarm; no-reference without one."""
    predictions, labeled = len(window.probabilities), len(window.labels)
    if reference is None:
        return Report(Verdict.NO_REFERENCE, why_no_reference or "the version has no reference", predictions, labeled)
    if predictions < thresholds.min_predictions:
        reason = f"{predictions} predictions in the window, fewer than {thresholds.min_predictions}: nothing tested"
        return Report(Verdict.INSUFFICIENT, reason, predictions, labeled, reference_accuracy=reference.accuracy)
    threshold = thresholds.per_family
    tests = drift_tests(window, reference, threshold, seed)
    correct = int(np.sum(window.answered == window.labels))
    accuracy = correct / labeled if labeled else None
    interval = statistics.wilson_interval(correct, labeled) if labeled else None
    if labeled >= thresholds.min_labels:
        tests = {"accuracy": statistics.accuracy_below(correct, labeled, reference.accuracy, threshold), **tests}
    confidence_lower = window.probabilities.max(axis=1).mean() < reference.probabilities.max(axis=1).mean()
    verdict, reason = decide(tests, bool(confidence_lower), labeled, thresholds)
    return Report(verdict, reason, predictions, labeled, accuracy, interval, reference.accuracy, tests)


def decide(
    tests: dict[str, TestResult], confidence_lower: bool, labeled: int, thresholds: Thresholds
) -> tuple[Verdict, str]:
    alarms = [name for name, test in tests.items() if test.alarm]
    named = "; ".join(f"{name} (p={tests[name].p_value:.2g}: {tests[name].detail})" for name in alarms)
    confidence_dropped = tests["top probability"].alarm and confidence_lower
    if "accuracy" in alarms:
        return Verdict.DEGRADED, f"live accuracy below the reference's: {named}"
    if confidence_dropped and any(name in alarms for name in INPUT_DRIFT):
        return Verdict.DEGRADED, f"the inputs drifted and the model's confidence dropped: {named}"
    if alarms:
        return Verdict.DRIFT, f"drift: {named}"
    if labeled < thresholds.min_labels:
        return Verdict.INSUFFICIENT, (
            f"{labeled} labels, fewer than {thresholds.min_labels}: accuracy not tested; no drift found"
        )
    return Verdict.OK, "no test alarmed"
