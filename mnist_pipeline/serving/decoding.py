"""Uploaded images decoded into digits by a few threads (a core's worth each), fairly between requests.

A request hands its images to the pool one at a time and waits for each before handing the next, so a
request with 32 large images holds one thread at a time and another client's single image, queued
meanwhile, is decoded next instead of after all 32.
"""

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

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
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="image-decoder")

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def digits(self, images: list[tuple[str, bytes]]) -> np.ndarray:
        """(N, 28, 28) uint8 digits of `images` (name, bytes), in their order; ServiceError on a bad one."""
        if self._pool is None:
            raise RuntimeError("the decoder is not started")
        loop = asyncio.get_running_loop()
        digits = [await loop.run_in_executor(self._pool, self._prepare, name, data) for name, data in images]
        return np.stack(digits)
