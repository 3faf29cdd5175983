"""A person's approval of a challenger in the Prefect UI's Resume form (`approval` always or borderline).

A deployment run is suspended: its process exits, holding no cores or concurrency slot while it waits,
and the run starts again from the top when resumed, finding training and registration cached (keyed by
the run) and the decision stored as its input. A run without a deployment cannot be rescheduled, so it
pauses in place instead. The server fails a run nobody resumes within the timeout; no flow code runs
then, so the registry records "no decision" when it next reads the request.
"""

from typing import Literal

from prefect.flow_runs import pause_flow_run, suspend_flow_run
from prefect.input import RunInput
from prefect.runtime import deployment
from prefect.settings import PREFECT_API_URL

from mnist_pipeline.errors import PipelineError
from mnist_pipeline.tasks.temporary_server import is_temporary_server

Approval = Literal["auto", "always", "borderline"]


class ApprovalDecision(RunInput):
    """The Resume form: approve the challenger (or leave the switch off to reject it), and why."""

    approve: bool = False  # a switch in the form (the UI offers no choices for a Literal here)
    reason: str
    reviewer: str = "a person in the Prefect UI"

    def record(self) -> dict[str, str]:
        """The decision as the version's metadata keeps it."""
        return {"decision": "approve" if self.approve else "reject", "by": self.reviewer, "reason": self.reason}


def check_approval_possible(approval: Approval) -> None:
    if approval != "auto" and is_temporary_server(PREFECT_API_URL.value()):
        raise PipelineError(
            f"approval={approval} needs a Prefect server to wait on (set PREFECT_API_URL, e.g. after `make server`); "
            "or pass approval=auto"
        )


def needs_person(
    approval: Approval, accuracy: float, champion_accuracy: float | None, users: dict | None, tolerance: float
) -> bool:
    """always: yes; borderline: when MNIST's test set and the users' digits disagree on which model is
    better, or the MNIST margin is within the tolerance; auto: never."""
    if approval != "borderline" or champion_accuracy is None:
        return approval == "always"
    within = abs(accuracy - champion_accuracy) <= tolerance
    if not users or users.get("champion") is None:
        return within
    return within or (accuracy > champion_accuracy) != (users["challenger"] > users["champion"])


def wait_for_decision(timeout_seconds: int) -> ApprovalDecision:
    """Suspend (a deployment run) or pause (any other run) until a person resumes the run with a decision."""
    if deployment.get_id():
        return suspend_flow_run(wait_for_input=ApprovalDecision, timeout=timeout_seconds, key="approval")
    return pause_flow_run(wait_for_input=ApprovalDecision, timeout=timeout_seconds, key="approval")
