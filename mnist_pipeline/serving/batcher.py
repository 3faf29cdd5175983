"""One model call for the images of many concurrent requests.

Requests queue their prepared digits; one thread takes everything queued at once, calls each model
once on the lot and hands every request its rows. While one call runs, the next requests gather in
the queue, so under load the batches grow by themselves and an idle service answers at once.
"""

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from mnist_pipeline.serving.model_slot import LoadedModel

MAX_BATCH = 256


class Batcher:
    def __init__(self, max_batch: int = MAX_BATCH, observe_batch: Callable[[int], None] | None = None):
        """`observe_batch(images)` learns the size of each batch (for /metrics)."""
        self.max_batch, self.observe_batch = max_batch, observe_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="model-batcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()

    async def predict(self, model: LoadedModel, digits: np.ndarray) -> np.ndarray:
        """Probabilities (N, 10) of `digits` (N, 28, 28) by `model`, computed with whatever else is queued."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((model, digits, loop, future))
        return await future

    def _run(self) -> None:
        while (first := self._queue.get()) is not None:
            pending, size = [first], len(first[1])
            while size < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                pending.append(item)
                size += len(item[1])
            if self.observe_batch is not None:
                self.observe_batch(size)
            for model in {id(item[0]): item[0] for item in pending}.values():
                self._call(model, [item for item in pending if item[0] is model])

    @staticmethod
    def _call(model: LoadedModel, items: list[tuple]) -> None:
        try:
            probabilities = model.predict(np.concatenate([item[1] for item in items]))
        except Exception as error:
            for _, _, loop, future in items:
                loop.call_soon_threadsafe(settle, future, None, error)
            return
        start = 0
        for _, digits, loop, future in items:
            loop.call_soon_threadsafe(settle, future, probabilities[start : start + len(digits)], None)
            start += len(digits)


def settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():  # the client went away and its request was cancelled
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)
