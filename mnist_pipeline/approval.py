"""When a challenger that passed the gate needs a person's approval before it becomes champion, and what a
decision, or a request nobody decided in time, does to the gate's verdict."""

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from mnist_pipeline.gate import Status, Verdict

Approval = Literal["auto", "always", "borderline"]

MARGIN_DIGITS = 12  # accuracies are counts over a test set: a margin of exactly the tolerance stays within it


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    NONE = "none"  # nobody decided before the request timed out


@dataclass(frozen=True)
class Review:
    """The decision on a challenger that waited for approval: who made it and why (`at`: when a request timed out)."""

    decision: Decision
    by: str
    reason: str
    at: str | None = None

    def record(self) -> dict[str, str]:
        """The review as the version's metadata keeps it under `approval`."""
        record = {"decision": str(self.decision), "by": self.by, "reason": self.reason}
        return record if self.at is None else {**record, "at": self.at}

    def applied_to(self, verdict: Verdict) -> Verdict:
        """The gate's verdict once reviewed: anything but an approval fails a version that passed."""
        if not verdict.passes or self.decision is Decision.APPROVE:
            return verdict
        reason = f"{self.decision} by {self.by}: {self.reason} (the gate passed: {verdict.reason})"
        return replace(verdict, passes=False, reason=reason)


def mnist_and_users_disagree(accuracy: float, champion_accuracy: float, users: dict | None) -> bool:
    """Whether MNIST's test set and the users' digits (`{"challenger", "champion"}` accuracies) each call a
    different model better; a tie on either set is no disagreement."""
    if not users or users.get("champion") is None:
        return False
    mnist_margin = accuracy - champion_accuracy
    users_margin = users["challenger"] - users["champion"]
    return mnist_margin * users_margin < 0


def needs_person(
    approval: Approval, accuracy: float, champion_accuracy: float | None, users: dict | None, tolerance: float
) -> bool:
    """always: yes; auto: never; borderline: when there is a champion and either MNIST's margin over it is
    within the tolerance or the test sets disagree on which model is better."""
    if approval != "borderline" or champion_accuracy is None:
        return approval == "always"
    within = round(abs(accuracy - champion_accuracy), MARGIN_DIGITS) <= tolerance
    return within or mnist_and_users_disagree(accuracy, champion_accuracy, users)


def no_decision(until: datetime) -> Review:
    """The review of a request that nobody approved or rejected before `until`."""
    reason = f"no decision: nobody approved or rejected it before {until:%Y-%m-%dT%H:%M:%S} UTC"
    return Review(Decision.NONE, "timeout", reason, until.isoformat())


def expiry(metadata: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The metadata changes that record a version's approval request that timed out before `now` as rejected
    with no decision; none for any other version."""
    if metadata.get("status") != Status.AWAITING_APPROVAL:
        return {}
    until = datetime.fromisoformat(metadata["approval_request"]["until"])
    if until >= now:
        return {}
    review = no_decision(until)
    return {"status": Status.REJECTED, "rejection_reason": review.reason, "approval": review.record()}
