import pytest

from mnist_pipeline.gate import Gate, Status, Verdict

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
