"""When a challenger that passed the gate needs a person's approval before it becomes champion."""

from datetime import datetime
from typing import Literal

Approval = Literal["auto", "always", "borderline"]

MARGIN_DIGITS = 12  # accuracies are counts over a test set: a margin of exactly the tolerance stays within it


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


def no_decision(until: datetime) -> dict[str, str]:
    """The approval recorded for a request that nobody approved or rejected before `until`."""
    reason = f"no decision: nobody approved or rejected it before {until:%Y-%m-%dT%H:%M:%S} UTC"
    return {"decision": "none", "by": "timeout", "reason": reason, "at": until.isoformat()}
