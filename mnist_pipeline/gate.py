"""The promotion gate: whether a challenger may replace the champion, from the two versions' MNIST test accuracy
and the gate's settings alone. The registry reads the accuracies and records what the gate decides."""

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    """Where a version stands. Its metadata records the first four; `champion` (the newest promotion's version)
    and `archived` (a former champion) are read from the promotion records."""

    CHALLENGER = "challenger"
    AWAITING_APPROVAL = "awaiting approval"
    PROMOTED = "promoted"
    REJECTED = "rejected"
    CHAMPION = "champion"
    ARCHIVED = "archived"


@dataclass(frozen=True)
class Verdict:
    """Whether `passes` lets a version replace `champion` (None: there is none yet), and why. The accuracies
    are None for a promotion by hand, which compares nothing."""

    passes: bool
    reason: str
    champion: str | None
    accuracy: float | None
    champion_accuracy: float | None


@dataclass(frozen=True)
class Gate:
    """A version passes if its test accuracy is at least `min_accuracy` and at least the champion's minus
    `tolerance` (both fractions)."""

    tolerance: float
    min_accuracy: float = 0.0

    def verdict(self, accuracy: float, champion: str | None, champion_accuracy: float | None) -> Verdict:
        def judged(passes: bool, reason: str) -> Verdict:
            return Verdict(passes, reason, champion, accuracy, champion_accuracy)

        if accuracy < self.min_accuracy:
            return judged(False, f"test accuracy {accuracy:.3%} < the floor min_accuracy {self.min_accuracy:.3%}")
        if champion is None:
            return judged(True, "first version: no champion yet")
        if champion_accuracy is None:
            raise ValueError(f"champion {champion} has no test accuracy to compare with: evaluate it first")
        passes = accuracy >= champion_accuracy - self.tolerance
        return judged(
            passes,
            f"test accuracy {accuracy:.3%} {'>=' if passes else '<'} champion {champion}'s {champion_accuracy:.3%} "
            f"- tolerance {100 * self.tolerance:.3f} points",
        )
