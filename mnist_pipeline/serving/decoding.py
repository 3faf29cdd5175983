"""Uploaded images decoded into digits by a few threads (a core's worth each), fairly between requests.

A request hands its images over one at a time and waits for each before handing the next, so a request with 32
large images holds at most one thread. The threads take the waiting images in rounds: every request's first
image before any request's second, and so on (ties by arrival). So another client's single image waits only for
the images being decoded when it arrives, not behind the next image of every request in flight.
"""

import asyncio
import itertools
import os
import queue
import threading
from collections.abc import Callable

import numpy as np

from mnist_pipeline.images import ImageError, digit_from_bytes
from mnist_pipeline.serving.uploads import ServiceError

DEFAULT_DECODERS = os.cpu_count() or 1


def prepare(name: str, data: bytes) -> np.ndarray:
    """The digit `predict` would see in these bytes, or a 400 naming what is wrong with them."""
    where = "" if name == "body" else f"{name}: "
    try:
        return digit_from_bytes(data)
    except ImageError as error:
        raise ServiceError(400, f"{where}{error}") from None
    except Exception as error:  # Pillow raises more than its documented errors on hostile input
        raise ServiceError(400, f"{where}not a readable image ({type(error).__name__})") from None


class Decoder:
    def __init__(self, threads: int = DEFAULT_DECODERS, prepare: Callable[[str, bytes], np.ndarray] = prepare) -> None:
        if threads < 1:
            raise ValueError(f"a decoder needs at least one thread, got {threads}")
        self.threads, self._prepare = threads, prepare
        self._waiting: queue.PriorityQueue | None = None
        self._arrivals = itertools.count()

    def start(self) -> None:
        self._waiting = queue.PriorityQueue()
        for number in range(self.threads):
            threading.Thread(
                target=self._decode, args=(self._waiting,), name=f"image-decoder-{number}", daemon=True
            ).start()

    def stop(self) -> None:
        if self._waiting is not None:
            for _ in range(self.threads):  # ahead of any image still waiting: those are not decoded
                self._waiting.put((float("-inf"), next(self._arrivals), None))
            self._waiting = None

    def _decode(self, waiting: queue.PriorityQueue) -> None:
        while (work := waiting.get()[2]) is not None:
            future, name, data = work
            if future.cancelled():  # its client went away while it waited
                continue
            try:
                outcome = (self._prepare(name, data), None)
            except Exception as error:  # the request's coroutine raises it
                outcome = (None, error)
            try:
                future.get_loop().call_soon_threadsafe(_settle, future, *outcome)
            except RuntimeError:  # the service stopped meanwhile: its event loop is closed
                pass

    async def digits(self, images: list[tuple[str, bytes]]) -> np.ndarray:
        """(N, 28, 28) uint8 digits of `images` (name, bytes), in their order; ServiceError on a bad one."""
        if self._waiting is None:
            raise RuntimeError("the decoder is not started")
        digits = []
        for index, (name, data) in enumerate(images):
            future = asyncio.get_running_loop().create_future()
            self._waiting.put((index, next(self._arrivals), (future, name, data)))
            digits.append(await future)
        return np.stack(digits)


def _settle(future: asyncio.Future, digit: np.ndarray | None, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(digit)
