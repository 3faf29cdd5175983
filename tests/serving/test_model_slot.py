"""The slot that follows the champion, with a fake loader (no TensorFlow) and a store that fails, then heals."""

import json
import logging
import threading
import time
from datetime import UTC, datetime

import numpy as np
import pytest

from mnist_pipeline.registry import Registry, RegistryError
from mnist_pipeline.serving.model_slot import LoadedModel, ModelSlot

STORE_ERRORS = [
    PermissionError(13, "Access Denied"),
    OSError(),
    RuntimeError("Could not connect to the endpoint URL"),
]


class FlakyRegistry(Registry):
    """A registry whose store raises `failure` while it is set, as a bucket does when the network or a permission
    goes away; `reads` counts the attempts."""

    failure: Exception | None = None
    reads = 0

    def resolve(self, spec: str) -> str:
        self.reads += 1
        if self.failure is not None:
            raise self.failure
        return super().resolve(spec)


def fake_loader(registry: Registry, version: str) -> LoadedModel:
    return LoadedModel(version, "fake", None, datetime.now(UTC).isoformat(), lambda digits: np.zeros((len(digits), 10)))


def publish(registry: Registry) -> str:
    with registry.staging() as folder:
        return registry.publish(folder, {})


@pytest.fixture
def registry(tmp_path) -> FlakyRegistry:
    registry = FlakyRegistry(tmp_path / "models")
    registry.promote(publish(registry))
    return registry


def eventually(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the time limit"
        time.sleep(0.01)


@pytest.mark.parametrize("error", STORE_ERRORS, ids=lambda error: type(error).__name__)
def test_the_watcher_survives_store_errors_says_so_and_picks_up_the_next_promotion(registry, error):
    slot = ModelSlot(registry, poll_seconds=0.01, loader=fake_loader)
    slot.start()
    try:
        assert slot.current.version == "v0001" and slot.problem is None
        registry.failure = error
        eventually(lambda: slot.problem is not None)
        assert slot.problem.startswith(f"the model registry {registry.root} could not be read ({type(error).__name__}")
        assert slot.problem.endswith("; still serving v0001")
        registry.failure = None
        registry.promote(publish(registry))  # written while the watcher backs off
        registry.failure = error
        time.sleep(0.2)
        assert slot.current.version == "v0001"

        registry.failure = None
        eventually(lambda: slot.current.version == "v0002")
        eventually(lambda: slot.problem is None)
    finally:
        slot.stop()


def test_a_slot_started_while_the_store_fails_loads_the_champion_once_it_answers(registry):
    registry.failure = PermissionError(13, "Permission denied")
    slot = ModelSlot(registry, poll_seconds=0.01, loader=fake_loader)
    slot.start()
    try:
        assert slot.current is None and "could not be read (PermissionError" in slot.problem
        registry.failure = None
        eventually(lambda: slot.current is not None and slot.current.version == "v0001")
        assert slot.problem is None
    finally:
        slot.stop()


def test_a_fixed_version_is_loaded_once_the_store_answers_and_then_no_longer_polled(registry):
    registry.failure = OSError("Network is unreachable")
    slot = ModelSlot(registry, "v0001", poll_seconds=0.01, loader=fake_loader)
    slot.start()
    try:
        registry.failure = None
        eventually(lambda: slot.current is not None)
        slot._watcher.join(timeout=5)
        assert not slot._watcher.is_alive()
    finally:
        slot.stop()


class CountedStop(threading.Event):
    """The watcher's stop event, never waiting: records each wait's length and stops after `polls` polls."""

    def __init__(self, polls: int):
        super().__init__()
        self.waits: list[float] = []
        self.polls = polls

    def wait(self, timeout=None) -> bool:
        self.waits.append(timeout)
        return len(self.waits) > self.polls


def test_the_watcher_backs_off_doubling_to_a_cap_and_polls_again_at_its_pace_once_the_store_answers(registry):
    slot = ModelSlot(registry, poll_seconds=1.0, loader=fake_loader)
    slot.refresh()
    slot._stop = CountedStop(polls=12)
    answers = iter([OSError("timed out")] * 8 + [None] * 4)

    def resolve(spec: str) -> str:
        failure = next(answers)
        if failure:
            raise failure
        return "v0001"

    registry.resolve = resolve
    slot._watch()
    assert slot._stop.waits == [1, 2, 4, 8, 16, 32, 60, 60, 60, 1, 1, 1, 1]
    assert slot.problem is None


def test_a_bug_in_a_poll_does_not_stop_the_watcher(registry, caplog):
    slot = ModelSlot(registry, poll_seconds=1.0, loader=fake_loader)
    slot.refresh()
    slot._stop = CountedStop(polls=3)
    outcomes = iter([KeyError("version"), True, True])

    def refresh() -> bool:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    slot.refresh = refresh
    with caplog.at_level(logging.ERROR, "mnist_pipeline.serving"):
        slot._watch()
    assert slot._stop.waits == [1, 2, 1, 1]
    assert [record.exc_info is not None for record in caplog.records] == [True]
    assert "the model watcher failed (KeyError: 'version'); still serving v0001" in caplog.text


def test_each_problem_is_logged_once_not_at_every_poll(registry, caplog):
    slot = ModelSlot(registry, poll_seconds=0.01, loader=fake_loader)
    slot.refresh()
    with caplog.at_level(logging.INFO, "mnist_pipeline.serving"):
        registry.failure = OSError("Connection reset by peer")
        for _ in range(5):
            slot.refresh()
        registry.failure = PermissionError(13, "Access Denied")
        for _ in range(5):
            slot.refresh()
        registry.failure = None
        for _ in range(5):
            slot.refresh()
    errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 2 and "Connection reset by peer" in errors[0] and "Access Denied" in errors[1]
    assert sum("serving v0001" in record.getMessage() for record in caplog.records if record.levelno == logging.INFO)


@pytest.mark.parametrize("content", [json.dumps({"version": "../../etc"}), json.dumps(["v0001"]), "garbage{"])
def test_a_champion_record_that_names_no_version_is_one_line_and_the_slot_keeps_serving(registry, content):
    slot = ModelSlot(registry, poll_seconds=1.0, loader=fake_loader)
    slot.refresh()
    newest = registry.root / "champion" / "000002.json"
    newest.write_text(content)
    with pytest.raises(RegistryError) as error:
        registry.champion()
    message = str(error.value)
    assert "\n" not in message and f"champion record {newest}" in message
    assert message.endswith("remove that record (the promotion before it rules again) or restore it from a backup")
    assert slot.refresh() and slot.current.version == "v0001" and slot.problem == f"{message}; still serving v0001"
