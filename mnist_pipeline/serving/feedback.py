"""Corrections sent to the service, stored in the labeled-data store as examples."""

import itertools
import logging

import numpy as np
from starlette.concurrency import run_in_threadpool

from mnist_pipeline.datastore import DataStore
from mnist_pipeline.serving.decoding import Decoder
from mnist_pipeline.serving.quota import FeedbackQuota
from mnist_pipeline.serving.schemas import Stored

logger = logging.getLogger("mnist_pipeline.serving")
FEEDBACK_SOURCE = "feedback"


class FeedbackRecorder:
    """Corrections stored as examples; every `event_every` new ones send `mnist.data.arrived` (when a
    Prefect API is configured), which a retrain deployment's trigger reacts to. `quota` limits each client's
    corrections (checked by the route before the body is read)."""

    def __init__(self, store: DataStore, decoder: Decoder, event_every: int = 100, quota: FeedbackQuota | None = None):
        if event_every < 1:
            raise ValueError(f"event_every must be at least 1, got {event_every}")
        self.store, self.decoder, self.event_every = store, decoder, event_every
        self.quota = quota or FeedbackQuota()
        self._added = itertools.count(1)

    async def record(
        self, image: tuple[str, bytes] | np.ndarray, label: int, client: str, source: str = FEEDBACK_SOURCE
    ) -> Stored:
        """`image` uploaded, or already prepared (a logged digit). Raises ServiceError for an unreadable image,
        ExampleRefused for one the store must not hold."""
        digit = image if isinstance(image, np.ndarray) else (await self.decoder.digits([image]))[0]
        return await run_in_threadpool(self._store, digit, label, client, source)

    def _store(self, digit: np.ndarray, label: int, client: str, source: str) -> Stored:
        stored = self.store.add(digit, label, source, client)
        examples = self.store.count()
        if stored["outcome"] == "added" and next(self._added) % self.event_every == 0:
            from mnist_pipeline.orchestration import events  # imports Prefect: only when an event is due

            events.emit_data_arrived(self.store.summary(), self.event_every, source)
        logger.info(
            "feedback: %s labeled %d (%s); %d examples", stored["sha256"][:12], label, stored["outcome"], examples
        )
        return Stored(**stored, label=label, examples=examples)
