"""A person's approval of a challenger in the Prefect UI's Resume form (`approval` always or borderline).

A deployment run is suspended: its process exits, holding no cores or concurrency slot while it waits,
and the run starts again from the top when resumed, finding training and registration cached (keyed by
the run) and the decision stored as its input. A run without a deployment cannot be rescheduled, so it
pauses in place instead, and records "no decision" itself when nobody resumes it within the timeout. The server
fails a suspended run nobody resumes in time; no flow code runs then, so the registry records "no decision"
when it next reads the request.
"""

from datetime import UTC, datetime

from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run, suspend_flow_run
from prefect.input import RunInput
from prefect.runtime import deployment
from prefect.settings import PREFECT_API_URL

from mnist_pipeline.approval import Approval, Decision, Review, no_decision
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.orchestration.temporary_server import is_temporary_server


class ApprovalDecision(RunInput):
    """The Resume form: approve the challenger (or leave the switch off to reject it), and why."""

    approve: bool = False  # a switch in the form (the UI offers no choices for a Literal here)
    reason: str
    reviewer: str = "a person in the Prefect UI"

    def review(self) -> Review:
        return Review(Decision.APPROVE if self.approve else Decision.REJECT, self.reviewer, self.reason)


class NoDecision(PipelineError):
    """Nobody approved or rejected the challenger in time: it is recorded as rejected, and the server fails the run."""


def check_approval_possible(approval: Approval) -> None:
    if approval != "auto" and is_temporary_server(PREFECT_API_URL.value()):
        raise PipelineError(
            f"approval={approval} needs a Prefect server to wait on (set PREFECT_API_URL, e.g. after `make server`); "
            "or pass approval=auto"
        )


def wait_for_decision(timeout_seconds: int) -> Review:
    """Suspend (a deployment run) or pause (any other run) until a person resumes the run with a decision.
    A paused run that nobody resumes in time goes on with no decision; a suspended one has no process left by
    then (the registry records it when read)."""
    try:
        if deployment.get_id():
            decision = suspend_flow_run(wait_for_input=ApprovalDecision, timeout=timeout_seconds, key="approval")
        else:
            decision = pause_flow_run(wait_for_input=ApprovalDecision, timeout=timeout_seconds, key="approval")
    except FlowPauseTimeout:
        return no_decision(datetime.now(UTC))
    return decision.review()
