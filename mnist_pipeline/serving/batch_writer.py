"""Records queued on the request path and written by one background thread in batches, so that a request
never waits for the store and the store never sees one object per request."""

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("mnist_pipeline.serving")
STOP = object()


class BatchWriter:
    """`write(records)` called by a thread of its own with up to `flush_count` records, as soon as that many are
    queued or `flush_seconds` after the first of a batch arrived; `stop()` writes what is left. A crash loses
    the batch not yet written, at most `flush_count` records. Past `max_queued` records waiting (a store too
    slow or down) new ones are dropped rather than kept without bound. `every_hour`, if given, is called by
    the same thread at start and then at most once an hour (retention). `counted(outcome, n)` learns of
    records written and dropped."""

    def __init__(
        self,
        name: str,
        write: Callable[[list[Any]], object],
        flush_count: int = 256,
        flush_seconds: float = 5.0,
        max_queued: int = 100_000,
        every_hour: Callable[[], object] | None = None,
        counted: Callable[[str, int], None] = lambda outcome, count: None,
    ):
        if flush_count < 1 or flush_seconds <= 0:
            raise ValueError(f"flush after at least 1 record and a positive time, got {flush_count}, {flush_seconds}")
        self.name, self.write, self.flush_count, self.flush_seconds = name, write, flush_count, flush_seconds
        self.every_hour, self.counted = every_hour, counted
        self._queue: queue.Queue = queue.Queue(max_queued)
        self._thread: threading.Thread | None = None

    def add(self, record: Any) -> None:
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.counted("dropped", 1)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(STOP)
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        pending: list[Any] = []
        deadline = housekeeping = time.monotonic()
        while True:
            now = time.monotonic()
            if self.every_hour is not None and now >= housekeeping:
                self._safely(self.every_hour)
                housekeeping = now + 3600
            wakes = ([deadline] if pending else []) + ([housekeeping] if self.every_hour else [])
            try:
                item = self._queue.get(timeout=max(0.0, min(wakes) - now) if wakes else None)
            except queue.Empty:
                item = None
            if item is STOP:
                self._flush(pending)
                return
            if item is not None:
                if not pending:
                    deadline = time.monotonic() + self.flush_seconds
                pending.append(item)
            if len(pending) >= self.flush_count or (pending and time.monotonic() >= deadline):
                self._flush(pending)
                pending = []

    def _flush(self, records: list[Any]) -> None:
        if records:
            self.counted("written" if self._safely(self.write, records) else "dropped", len(records))

    def _safely(self, call: Callable[..., object], *arguments: Any) -> bool:
        """Whether `call` succeeded: the store down or a bug is logged, and the service goes on."""
        try:
            call(*arguments)
        except Exception:
            logger.exception("%s: a write to the store failed", self.name)
            return False
        return True
