"""Two-sample and one-sample tests, each returning a `TestResult` that says whether it alarms at its threshold."""

from typing import NamedTuple

import numpy as np
from scipy import stats

MMD_PERMUTATIONS = 2000  # p-values down to 1/2001, below the smallest per-family threshold of the default alpha
MMD_POINTS = 300  # points drawn from each side: the kernel matrix stays 600x600 whatever the window


class TestResult(NamedTuple):
    name: str
    statistic: float
    p_value: float
    threshold: float  # the test alarms when p_value < threshold
    alarm: bool
    detail: str = ""

    def record(self) -> dict:
        return {
            "statistic": self.statistic,
            "p_value": self.p_value,
            "threshold": self.threshold,
            "alarm": self.alarm,
            "detail": self.detail,
        }


def result(name: str, statistic: float, p_value: float, threshold: float, detail: str = "") -> TestResult:
    p_value = float(min(1.0, max(0.0, p_value)))
    return TestResult(name, float(statistic), p_value, threshold, p_value < threshold, detail)


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval for a binomial proportion; (0, 1) without trials."""
    if trials == 0:
        return 0.0, 1.0
    z = stats.norm.ppf(0.5 + confidence / 2)
    share = successes / trials
    center = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * np.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return float(max(0.0, center - half)), float(min(1.0, center + half))


def accuracy_below(correct: int, labeled: int, reference_accuracy: float, threshold: float) -> TestResult:
    """One-sided exact binomial test: is the live accuracy below the reference's?"""
    p_value = stats.binomtest(correct, labeled, reference_accuracy, alternative="less").pvalue
    detail = f"{correct} of {labeled} right; reference {reference_accuracy:.4f}"
    return result("accuracy", correct / labeled, p_value, threshold, detail)


def mix_differs(window_digits: np.ndarray, reference_digits: np.ndarray, threshold: float) -> TestResult:
    """Chi-squared test of the 2x10 table of predicted digits, window against reference."""
    table = np.stack([np.bincount(window_digits, minlength=10), np.bincount(reference_digits, minlength=10)])
    digits = np.flatnonzero(table.sum(axis=0) > 0)
    if len(digits) < 2:
        return result("predicted mix", 0.0, 1.0, threshold, "one digit only on both sides")
    chi2, p_value, _, _ = stats.chi2_contingency(table[:, digits], correction=False)
    change = table[0] / table[0].sum() - table[1] / table[1].sum()
    most = int(np.argmax(np.abs(change)))
    return result("predicted mix", chi2, p_value, threshold, f"digit {most}: {change[most]:+.1%} of predictions")


def distribution_differs(name: str, window: np.ndarray, reference: np.ndarray, threshold: float) -> TestResult:
    """Two-sided two-sample Kolmogorov-Smirnov test of one number per image."""
    test = stats.ks_2samp(window, reference)
    direction = "lower" if np.mean(window) < np.mean(reference) else "higher"
    detail = f"mean {np.mean(window):.4g} ({direction} than {np.mean(reference):.4g})"
    return result(name, test.statistic, test.pvalue, threshold, detail)


def columns_differ(
    name: str, window: np.ndarray, reference: np.ndarray, column_names: list[str], threshold: float
) -> TestResult:
    """A KS test per column, Bonferroni-corrected: the family's p-value is the smallest times the columns, and the
    detail names the columns that alarm on their own at that correction."""
    tests = [distribution_differs(column, window[:, i], reference[:, i], 1.0) for i, column in enumerate(column_names)]
    corrected = [min(1.0, test.p_value * len(tests)) for test in tests]
    changed = [f"{test.name} {test.detail}" for test, p in zip(tests, corrected) if p < threshold]
    detail = "; ".join(changed) if changed else "no column changed"
    return result(name, max(test.statistic for test in tests), min(corrected), threshold, detail)


def _squared_distances(points: np.ndarray) -> np.ndarray:
    norms = np.einsum("ij,ij->i", points, points)
    return np.maximum(norms[:, None] + norms[None, :] - 2 * points @ points.T, 0.0)


def mmd_differs(name: str, window: np.ndarray, reference: np.ndarray, threshold: float, seed: int = 0) -> TestResult:
    """Maximum mean discrepancy with an RBF kernel (median heuristic), p-value by permutations; at most
    MMD_POINTS points are drawn from each side."""
    rng = np.random.default_rng(seed)
    x = window[rng.permutation(len(window))[:MMD_POINTS]]
    y = reference[rng.permutation(len(reference))[:MMD_POINTS]]
    pooled = np.concatenate([x, y]).astype(np.float64)
    distances = _squared_distances(pooled)
    bandwidth = np.median(distances[np.triu_indices(len(pooled), 1)]) or 1.0
    kernel = np.exp(-distances / bandwidth)
    sides = np.concatenate([np.full(len(x), 1 / len(x)), np.full(len(y), -1 / len(y))])
    weights = np.stack([sides, *(rng.permutation(sides) for _ in range(MMD_PERMUTATIONS))], axis=1)
    mmd2 = np.einsum("ip,ip->p", weights, kernel @ weights)
    p_value = (1 + np.sum(mmd2[1:] >= mmd2[0])) / (1 + MMD_PERMUTATIONS)
    return result(name, mmd2[0], p_value, threshold, f"{len(x)} window and {len(y)} reference points")
