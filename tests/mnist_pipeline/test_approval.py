from datetime import UTC, datetime

import pytest

from mnist_pipeline.approval import Decision, Review, expiry, needs_person, no_decision
from mnist_pipeline.gate import Verdict

TOLERANCE = 0.001


def users(challenger: float, champion: float | None) -> dict:
    return {"examples": 40, "challenger": challenger, "champion": champion}


@pytest.mark.parametrize(
    ("accuracy", "champion_accuracy", "users_digits", "asks"),
    [
        pytest.param(0.9950, 0.9900, users(0.90, 0.85), False, id="a clear win on both test sets"),
        pytest.param(0.9950, 0.9900, None, False, id="a clear win, no users' digits"),
        pytest.param(0.9950, 0.9900, users(0.85, 0.85), False, id="a clear win, a tie on the users' digits"),
        pytest.param(0.9950, 0.9900, users(0.80, 0.85), True, id="the users' digits prefer the champion"),
        pytest.param(0.9950, 0.9900, users(0.80, None), False, id="users' digits without the champion's score"),
        pytest.param(0.9905, 0.9900, users(0.90, 0.85), True, id="a win within the tolerance"),
        pytest.param(0.9895, 0.9900, users(0.90, 0.85), True, id="a loss within the tolerance"),
        pytest.param(0.9912, 0.9902, None, True, id="a margin of exactly the tolerance"),
        pytest.param(0.9913, 0.9902, None, False, id="a margin just over the tolerance"),
        pytest.param(0.9800, 0.9900, users(0.95, 0.85), True, id="a clear loss that the users' digits contradict"),
        pytest.param(0.9800, 0.9900, users(0.80, 0.85), False, id="a clear loss on both"),
        pytest.param(0.9900, None, users(0.90, None), False, id="no champion: nothing to compare"),
    ],
)
def test_borderline_asks_a_person_when_the_margin_is_within_the_tolerance_or_the_test_sets_disagree(
    accuracy, champion_accuracy, users_digits, asks
):
    assert needs_person("borderline", accuracy, champion_accuracy, users_digits, TOLERANCE) is asks


@pytest.mark.parametrize("champion_accuracy", [None, 0.9900])
@pytest.mark.parametrize("users_digits", [None, users(0.80, 0.85)])
def test_always_asks_and_auto_never_does(champion_accuracy, users_digits):
    assert needs_person("always", 0.9950, champion_accuracy, users_digits, TOLERANCE) is True
    assert needs_person("auto", 0.9905, champion_accuracy, users_digits, TOLERANCE) is False


PASSED = Verdict(True, "first version: no champion yet", None, 0.99, None)
FAILED = Verdict(False, "test accuracy 97.000% < the floor min_accuracy 98.000%", None, 0.97, None)


def test_only_an_approval_lets_a_passing_version_through():
    approved = Review(Decision.APPROVE, "ana", "looks right")
    assert approved.applied_to(PASSED) == PASSED
    rejected = Review(Decision.REJECT, "ana", "too slow").applied_to(PASSED)
    assert not rejected.passes and rejected.reason == (
        "reject by ana: too slow (the gate passed: first version: no champion yet)"
    )
    assert not no_decision(datetime(2026, 1, 2, tzinfo=UTC)).applied_to(PASSED).passes


@pytest.mark.parametrize("decision", list(Decision))
def test_no_review_lets_a_failing_version_through(decision):
    assert Review(decision, "ana", "why not").applied_to(FAILED) == FAILED


def test_a_review_is_recorded_as_the_metadata_always_kept_it():
    assert Review(Decision.REJECT, "ana", "too slow").record() == {
        "decision": "reject",
        "by": "ana",
        "reason": "too slow",
    }
    assert no_decision(datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)).record() == {
        "decision": "none",
        "by": "timeout",
        "reason": "no decision: nobody approved or rejected it before 2026-01-02T03:04:05 UTC",
        "at": "2026-01-02T03:04:05.123456+00:00",
    }


def test_only_a_request_whose_time_ran_out_expires():
    now = datetime(2026, 6, 1, tzinfo=UTC)
    waiting = {"status": "awaiting approval", "approval_request": {"flow_run_id": "a-run", "until": now.isoformat()}}
    assert expiry(waiting, now) == {}
    assert expiry({"status": "rejected", "approval_request": {"until": "2000-01-01T00:00:00+00:00"}}, now) == {}
    expired = expiry({**waiting, "approval_request": {"until": "2026-05-31T00:00:00+00:00"}}, now)
    assert expired["status"] == "rejected" and expired["approval"]["decision"] == "none"
    assert expired["rejection_reason"] == expired["approval"]["reason"]
