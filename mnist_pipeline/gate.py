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


SIGNIFICANT_Z = 1.96  # a users' margin this many standard errors from zero is no chance (95%, two-sided)


def users_disagreement(
    accuracy: float, champion_accuracy: float | None, users: dict | None, z: float = SIGNIFICANT_Z
) -> str | None:
    """Why MNIST's test set and the users' held-out digits (`{"examples", "challenger", "champion"}` accuracies)
    disagree on which model is better, or None: MNIST says the challenger is at least as good but the users' digits
    say the champion is significantly better, or MNIST says the champion is better but the users' digits say the
    challenger significantly is. Significant: a margin over `z` standard errors of the difference of two accuracies
    on `examples` digits."""
    if champion_accuracy is None or not users or users.get("champion") is None or not users.get("examples"):
        return None
    challenger, champion, examples = users["challenger"], users["champion"], users["examples"]
    error = ((challenger * (1 - challenger) + champion * (1 - champion)) / examples) ** 0.5
    users_margin = challenger - champion
    if abs(users_margin) <= z * error:
        return None
    mnist_prefers_challenger = accuracy >= champion_accuracy
    if mnist_prefers_challenger == (users_margin > 0):
        return None
    mnist = f"MNIST's test set rates the {'challenger' if mnist_prefers_challenger else 'champion'} better"
    return (
        f"{mnist} ({accuracy:.3%} vs {champion_accuracy:.3%}) but the users' digits rate the "
        f"{'challenger' if users_margin > 0 else 'champion'} significantly better ({challenger:.3%} vs {champion:.3%} "
        f"on {examples} held-out digits)"
    )
