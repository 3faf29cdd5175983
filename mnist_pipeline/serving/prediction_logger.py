"""The service's side of the prediction log (format: `mnist_pipeline.prediction_log`): a sample of its answers
and the labels users give them, written to the shared store in batches by background threads."""

import os
import random
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from mnist_pipeline import prediction_log
from mnist_pipeline.prediction_log import LabelRecord, PredictionBatch
from mnist_pipeline.serving.batch_writer import BatchWriter

RECENT = 10_000  # logged predictions kept in memory (7.9 kB each) for feedback that names one without an image


@dataclass(frozen=True)
class LogSettings:
    location: str | os.PathLike  # the shared root
    sample: float = 1.0  # the fraction of predictions logged
    flush_count: int = 256
    flush_seconds: float = 5.0
    retention_days: float = 30.0


@dataclass(frozen=True)
class Logged:
    version: str
    digit: np.ndarray  # the prepared 28x28 uint8 digit
    predicted: int


class PredictionLog:
    """`counted(log, outcome, n)` learns of records written and dropped (for /metrics)."""

    def __init__(self, settings: LogSettings, counted=lambda log, outcome, count: None):
        if not 0 <= settings.sample <= 1:
            raise ValueError(f"the logged fraction of predictions must be from 0 to 1, got {settings.sample}")
        self.settings = settings
        self.recent: OrderedDict[str, Logged] = OrderedDict()  # touched by the event loop's thread alone
        self.predictions = BatchWriter(
            "prediction-log",
            self._write_predictions,
            settings.flush_count,
            settings.flush_seconds,
            every_hour=self._delete_old,
            counted=lambda outcome, count: counted("predictions", outcome, count),
        )
        self.labels = BatchWriter(
            "prediction-label-log",
            lambda records: prediction_log.write_labels(settings.location, records),
            settings.flush_count,
            settings.flush_seconds,
            counted=lambda outcome, count: counted("labels", outcome, count),
        )

    def start(self) -> None:
        self.predictions.start()
        self.labels.start()

    def stop(self) -> None:
        self.predictions.stop()
        self.labels.stop()

    def record(self, version: str, ids: list[str], digits: np.ndarray, probabilities: np.ndarray) -> None:
        """Queue a sample of one request's answers (the digits as prepared, their probabilities)."""
        now = time.time()
        for prediction_id, digit, row in zip(ids, digits, probabilities, strict=True):
            if self.settings.sample < 1 and random.random() >= self.settings.sample:
                continue
            self.predictions.add((prediction_id, now, version, digit, row))
            self.recent[prediction_id] = Logged(version, digit, int(row.argmax()))
            if len(self.recent) > RECENT:
                self.recent.popitem(last=False)

    def find(self, prediction_id: str) -> Logged | None:
        return self.recent.get(prediction_id)

    def label(self, prediction_id: str, label: int, confirmed: bool) -> None:
        known = self.recent.get(prediction_id)
        self.labels.add(
            LabelRecord(
                prediction_id=prediction_id,
                label=label,
                confirmed=confirmed,
                time=time.time(),
                predicted=known.predicted if known else None,
                version=known.version if known else None,
            )
        )

    def _write_predictions(self, records: list[tuple]) -> None:
        ids, times, versions, digits, probabilities = zip(*records, strict=True)
        batch = PredictionBatch.of(ids, times, versions, np.stack(digits), np.stack(probabilities))
        prediction_log.write_predictions(self.settings.location, batch)

    def _delete_old(self) -> None:
        cutoff = prediction_log.retention_cutoff(self.settings.retention_days, time.time())
        prediction_log.delete_older_than(self.settings.location, cutoff)
