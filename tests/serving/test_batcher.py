import asyncio
import threading
import time

import numpy as np

from mnist_pipeline.serving.batcher import Batcher
from mnist_pipeline.serving.model_slot import LoadedModel


def recording_model(version: str, calls: list, gate: threading.Event | None = None) -> LoadedModel:
    """A model whose row i answers the digit's first pixel, and that records each call's batch size."""

    def predict(digits: np.ndarray) -> np.ndarray:
        if gate is not None:
            gate.wait()
        calls.append((version, len(digits)))
        return np.eye(10, dtype=np.float32)[digits[:, 0, 0] % 10]

    return LoadedModel(version=version, model="fake", test_accuracy=None, loaded_at="", predict=predict)


def digits_starting_with(*values: int) -> np.ndarray:
    digits = np.zeros((len(values), 28, 28), np.uint8)
    digits[:, 0, 0] = values
    return digits


def test_concurrent_requests_share_model_calls_and_each_gets_its_own_rows_from_its_own_model():
    calls: list = []
    gate = threading.Event()
    old, new = recording_model("old", calls, gate), recording_model("new", calls, gate)
    batcher = Batcher(max_batch=64)
    batcher.start()

    async def requests():
        first = asyncio.ensure_future(batcher.predict(old, digits_starting_with(9)))
        await asyncio.sleep(0.05)  # the first call is running (held at the gate) while the others queue
        rest = [
            asyncio.ensure_future(batcher.predict(old if i % 2 else new, digits_starting_with(i, i + 1)))
            for i in range(20)
        ]
        await asyncio.sleep(0.05)
        gate.set()
        return await first, await asyncio.gather(*rest)

    try:
        first, rest = asyncio.run(requests())
    finally:
        batcher.stop()
    assert first.argmax(axis=1).tolist() == [9]
    assert [answer.argmax(axis=1).tolist() for answer in rest] == [[i % 10, (i + 1) % 10] for i in range(20)]
    assert calls == [("old", 1), ("new", 20), ("old", 20)]  # one call per model for the queued requests


def test_a_failing_model_fails_its_requests_and_the_batcher_goes_on():
    def broken(digits):
        raise RuntimeError("out of memory")

    failing = LoadedModel(version="bad", model="fake", test_accuracy=None, loaded_at="", predict=broken)
    batcher = Batcher()
    batcher.start()

    async def requests():
        outcome = await asyncio.gather(batcher.predict(failing, digits_starting_with(1)), return_exceptions=True)
        return outcome[0], await batcher.predict(recording_model("good", []), digits_starting_with(3))

    started = time.monotonic()
    try:
        error, answer = asyncio.run(requests())
    finally:
        batcher.stop()
    assert isinstance(error, RuntimeError) and answer.argmax(axis=1).tolist() == [3]
    assert time.monotonic() - started < 5
