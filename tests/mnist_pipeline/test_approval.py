import pytest

from mnist_pipeline.approval import needs_person

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
