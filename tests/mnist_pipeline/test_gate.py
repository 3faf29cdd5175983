import pytest

from mnist_pipeline.gate import Gate, Status, Verdict, users_disagreement

GATE = Gate(tolerance=0.001, min_accuracy=0.98)


def test_the_first_version_passes_if_it_clears_the_floor():
    assert GATE.verdict(0.99, None, None) == Verdict(True, "first version: no champion yet", None, 0.99, None)


@pytest.mark.parametrize("champion", [None, "v0001"])
def test_below_the_floor_fails_whatever_the_champion(champion):
    verdict = GATE.verdict(0.97, champion, 0.5 if champion else None)
    assert not verdict.passes and verdict.champion == champion
    assert verdict.reason == "test accuracy 97.000% < the floor min_accuracy 98.000%"


@pytest.mark.parametrize(
    ("accuracy", "passes"),
    [(0.995, True), (0.99, True), (0.9895, True), (0.989, True), (0.9889, False)],
    ids=["better", "equal", "within the tolerance", "exactly the tolerance", "worse"],
)
def test_a_challenger_passes_down_to_the_champion_s_accuracy_minus_the_tolerance(accuracy, passes):
    verdict = GATE.verdict(accuracy, "v0003", 0.99)
    assert verdict.passes is passes and (verdict.champion, verdict.champion_accuracy) == ("v0003", 0.99)
    comparison = ">=" if passes else "<"
    assert verdict.reason == (
        f"test accuracy {100 * accuracy:.3f}% {comparison} champion v0003's 99.000% - tolerance 0.100 points"
    )


def test_a_champion_without_a_test_accuracy_cannot_be_compared():
    with pytest.raises(ValueError, match="champion v0002 has no test accuracy"):
        GATE.verdict(0.99, "v0002", None)


def test_the_statuses_read_as_the_strings_the_metadata_keeps():
    assert [str(status) for status in Status] == [
        "challenger",
        "awaiting approval",
        "promoted",
        "rejected",
        "champion",
        "archived",
    ]
    assert Status("awaiting approval") is Status.AWAITING_APPROVAL and Status.REJECTED == "rejected"


def users(challenger: float, champion: float | None, examples: int = 400) -> dict:
    return {"examples": examples, "challenger": challenger, "champion": champion}


def test_mnist_rating_the_challenger_at_least_as_good_while_users_rate_the_champion_significantly_better_disagree():
    reason = users_disagreement(0.990, 0.990, users(0.80, 0.90))
    assert reason == (
        "MNIST's test set rates the challenger better (99.000% vs 99.000%) but the users' digits rate the champion "
        "significantly better (80.000% vs 90.000% on 400 held-out digits)"
    )
    assert "rates the champion better" in users_disagreement(0.985, 0.990, users(0.95, 0.85))  # the other way round


@pytest.mark.parametrize(
    "accuracy, champion_accuracy, users_digits",
    [
        (0.99, 0.98, users(0.89, 0.90)),  # a users' margin that chance explains
        (0.99, 0.98, users(0.80, 0.90, examples=20)),  # too few digits to tell
        (0.99, 0.98, users(0.95, 0.85)),  # both rate the challenger better
        (0.97, 0.98, users(0.80, 0.90)),  # both rate the champion better
        (0.99, None, users(0.80, None)),  # no champion
        (0.99, 0.98, None),  # no users' digits
        (0.99, 0.98, users(0.9, 0.9)),
    ],
)
def test_no_disagreement_when_the_sets_agree_or_the_users_margin_is_chance(accuracy, champion_accuracy, users_digits):
    assert users_disagreement(accuracy, champion_accuracy, users_digits) is None
