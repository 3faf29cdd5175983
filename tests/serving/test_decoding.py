"""Decoding is bounded and fair: one client's many images do not queue another client's behind them."""

import asyncio
import threading
import time

import numpy as np
import pytest

from mnist_pipeline.serving.decoding import Decoder
from mnist_pipeline.serving.uploads import ServiceError


class SlowPrepare:
    """A stand-in for decoding: 20 ms an image, recording the order and the most running at once."""

    def __init__(self):
        self.order: list[str] = []
        self.running = self.most_running = 0
        self.lock = threading.Lock()

    def __call__(self, name: str, data: bytes) -> np.ndarray:
        with self.lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        time.sleep(0.02)
        with self.lock:
            self.running -= 1
            self.order.append(name)
        return np.full((28, 28), len(data), np.uint8)


def test_a_single_image_is_decoded_between_another_requests_many_which_hold_one_thread():
    prepare = SlowPrepare()
    decoder = Decoder(threads=2, prepare=prepare)
    decoder.start()

    async def clients():
        many = asyncio.create_task(decoder.digits([(f"many-{i}", b"x" * i) for i in range(1, 21)]))
        await asyncio.sleep(0.05)  # the big request has started, alone
        assert prepare.most_running == 1  # one request: one image at a time, whatever the threads
        single = await decoder.digits([("single", b"abc")])
        return await many, single

    try:
        many, single = asyncio.run(clients())
    finally:
        decoder.stop()
    assert [int(digit[0, 0]) for digit in many] == list(range(1, 21)) and single[0, 0, 0] == 3  # each in order
    assert prepare.order.index("single") <= 10, prepare.order  # not after all 20 of the other request


def test_requests_share_the_threads_and_a_bad_image_is_refused_with_its_name():
    prepare = SlowPrepare()
    decoder, real = Decoder(threads=2, prepare=prepare), Decoder(threads=1)
    decoder.start()
    real.start()

    async def clients():
        await asyncio.gather(*(decoder.digits([(f"{c}-{i}", b"x") for i in range(5)]) for c in "abc"))
        await real.digits([("file 1 (a.png)", b"not an image")])

    try:
        with pytest.raises(ServiceError, match=r"^file 1 \(a.png\): not an image file"):
            asyncio.run(clients())
    finally:
        decoder.stop()
        real.stop()
    assert prepare.most_running == 2 and len(prepare.order) == 15  # three requests on two threads


class GatedPrepare:
    """A stand-in for decoding that holds each named image until the test lets it go, recording the order."""

    def __init__(self, held: set[str]):
        self.order: list[str] = []
        self.started = {name: threading.Event() for name in held}
        self.release = {name: threading.Event() for name in held}

    def __call__(self, name: str, data: bytes) -> np.ndarray:
        self.order.append(name)
        if name in self.started:
            self.started[name].set()
            assert self.release[name].wait(10), f"{name} never released"
        return np.zeros((28, 28), np.uint8)


def test_every_requests_first_image_is_decoded_before_any_requests_next_one():
    """One thread; two requests of three images each are in flight when a single image arrives: it is decoded
    right after the image being decoded, not behind their next images, which were waiting before it came."""
    prepare = GatedPrepare({"a0", "c0"})
    decoder = Decoder(threads=1, prepare=prepare)
    decoder.start()

    async def clients():
        many = [asyncio.create_task(decoder.digits([(f"{c}{i}", b"x") for i in range(3)])) for c in "ac"]
        await asyncio.to_thread(prepare.started["a0"].wait, 10)  # a0 holds the thread; c0 waits
        prepare.release["a0"].set()
        await asyncio.to_thread(prepare.started["c0"].wait, 10)  # c0 holds the thread; a1 waits
        single = asyncio.create_task(decoder.digits([("b0", b"x")]))
        await asyncio.sleep(0.05)  # b0 is waiting too, after a1
        prepare.release["c0"].set()
        await asyncio.gather(single, *many)

    try:
        asyncio.run(clients())
    finally:
        decoder.stop()
    assert prepare.order == ["a0", "c0", "b0", "a1", "c1", "a2", "c2"]
