"""The monitoring tests on synthetic data with known answers: the same distribution alarms at about the chosen rate,
a known shift alarms, and the Wilson interval matches published values."""

import numpy as np
import pytest

from mnist_pipeline.monitoring import statistics
from mnist_pipeline.monitoring.digits import STATISTICS, digit_statistics

ALPHA = 0.05  # higher than the monitor's, so that 100 repetitions measure the rate


def alarm_share(test, repetitions=100) -> float:
    return np.mean([test(np.random.default_rng(seed), seed).alarm for seed in range(repetitions)])


def test_wilson_interval_matches_known_values():
    low, high = statistics.wilson_interval(81, 263)  # Wilson (1927) as computed by statsmodels: 0.2553, 0.3662
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    assert statistics.wilson_interval(0, 0) == (0.0, 1.0)
    assert statistics.wilson_interval(50, 50)[1] == 1.0


def test_accuracy_below_alarms_for_a_drop_and_not_for_the_same_accuracy():
    assert not statistics.accuracy_below(98, 100, 0.98, 0.01).alarm
    assert statistics.accuracy_below(88, 100, 0.98, 0.01).alarm
    same = alarm_share(lambda rng, _: statistics.accuracy_below(int(rng.binomial(200, 0.98)), 200, 0.98, ALPHA))
    assert same <= 0.1


def test_predicted_mix_alarms_for_one_digit_taking_half_the_traffic():
    reference = np.random.default_rng(0).integers(0, 10, 5000)
    same = alarm_share(lambda rng, _: statistics.mix_differs(rng.integers(0, 10, 200), reference, ALPHA))
    assert same <= 0.1
    skewed = np.where(np.random.default_rng(1).random(200) < 0.5, 3, np.random.default_rng(2).integers(0, 10, 200))
    shifted = statistics.mix_differs(skewed, reference, 0.001)
    assert shifted.alarm and shifted.detail.startswith("digit 3: +")


def test_ks_tests_alarm_for_a_shifted_mean_and_name_the_column():
    reference = np.random.default_rng(0).normal(size=(5000, 3))
    same = alarm_share(
        lambda rng, _: statistics.columns_differ("c", rng.normal(size=(200, 3)), reference, ["a", "b", "c"], ALPHA)
    )
    assert same <= 0.1
    window = np.random.default_rng(1).normal(size=(200, 3)) + [0, 0.6, 0]
    shifted = statistics.columns_differ("c", window, reference, ["a", "b", "c"], 0.001)
    assert shifted.alarm and shifted.detail.startswith("b mean") and "higher" in shifted.detail


def test_mmd_alarms_for_a_shift_in_several_dimensions_at_the_rate_asked_otherwise():
    reference = np.random.default_rng(0).normal(size=(2000, 8))
    same = alarm_share(
        lambda rng, seed: statistics.mmd_differs("x", rng.normal(size=(200, 8)), reference, ALPHA, seed), 40
    )
    assert same <= 0.15
    window = np.random.default_rng(1).normal(size=(200, 8)) * 1.4
    shifted = statistics.mmd_differs("x", window, reference, 0.002)
    assert shifted.alarm and shifted.p_value < 0.002


def test_digit_statistics_of_a_drawn_bar():
    image = np.zeros((1, 28, 28), np.uint8)
    image[0, 4:24, 12:15] = 255  # a vertical bar 20 high, 3 wide
    ink, row, column, height, width, stroke = digit_statistics(image)[0]
    assert (height, width) == (20, 3) and (row, column) == (13.5, 13.0)
    assert ink == pytest.approx(60 / 784) and stroke == pytest.approx(2 * 60 / 46)
    assert digit_statistics(np.zeros((1, 28, 28), np.uint8)).tolist() == [[0.0] * len(STATISTICS)]
