"""The prediction log: what the service answered, and the labels users gave those answers, kept in the
shared store for monitoring. `location` is the shared root (`settings.artifacts_url()`):

    predictions/YYYY-MM-DD/<UTC %Y%m%dT%H%M%S%f>-<uuid hex8>.npz        np.savez, N predictions:
        ids (U32, uuid4 hex), times (float64 unix seconds), versions (U16, e.g. v0003),
        digits (uint8 N,28,28: the prepared digit, never the upload), probabilities (float32 N,10)
    prediction-labels/YYYY-MM-DD/<UTC %Y%m%dT%H%M%S%f>-<uuid hex8>.json   a JSON list of
        {"prediction_id", "label": 0-9, "confirmed": bool (true: the user said the answer was right), "time",
         "predicted": the digit answered, "version": the model that answered (both null where the service no
         longer knew the prediction: then the join is by prediction_id alone)}

The name's time is the batch's first record's; the day folder is that time's UTC date. Each object is created
whole and once (`shared_store.create_exclusive`) and never changed; a writer batches many records into one,
so that an object store never sees one object per request. Objects older than the retention are deleted by
name (`delete_older_than`). A reader names and skips a damaged object, never fails on one.
"""

import io
import json
import logging
import os
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypedDict

import numpy as np

from mnist_pipeline.images import SIDE
from mnist_pipeline.shared_store import create_exclusive, open_store

logger = logging.getLogger("mnist_pipeline.prediction_log")
PREDICTIONS, LABELS = "predictions", "prediction-labels"
TIME_FORMAT = "%Y%m%dT%H%M%S%f"
OBJECT_NAME = re.compile(r"(\d{8}T\d{12})-[0-9a-f]{8}\.(npz|json)")
DAY_NAME = re.compile(r"\d{4}-\d{2}-\d{2}")
# A batch spans a few seconds; objects named this long before a window's start are still read, in case.
BATCH_SLACK_SECONDS = 3600.0


@dataclass(frozen=True)
class PredictionBatch:
    ids: np.ndarray  # U32
    times: np.ndarray  # float64 unix seconds
    versions: np.ndarray  # U16
    digits: np.ndarray  # uint8 (N, 28, 28)
    probabilities: np.ndarray  # float32 (N, 10)

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def of(cls, ids, times, versions, digits, probabilities) -> "PredictionBatch":
        """A batch with every array in its stored type and shape (ValueError if the lengths or shapes differ)."""
        batch = cls(
            np.asarray(ids, "U32"),
            np.asarray(times, np.float64),
            np.asarray(versions, "U16"),
            np.asarray(digits, np.uint8).reshape(-1, SIDE, SIDE),
            np.asarray(probabilities, np.float32).reshape(-1, 10),
        )
        lengths = {len(batch.ids), len(batch.times), len(batch.versions), len(batch.digits), len(batch.probabilities)}
        if len(lengths) != 1 or batch.ids.ndim != 1 or batch.times.ndim != 1 or batch.versions.ndim != 1:
            raise ValueError(f"a prediction batch's arrays differ in length or shape: {sorted(lengths)}")
        return batch

    @classmethod
    def empty(cls) -> "PredictionBatch":
        return cls.of([], [], [], np.zeros((0, SIDE, SIDE)), np.zeros((0, 10)))

    @classmethod
    def concatenate(cls, batches: list["PredictionBatch"]) -> "PredictionBatch":
        if not batches:
            return cls.empty()
        fields = ("ids", "times", "versions", "digits", "probabilities")
        return cls.of(*(np.concatenate([getattr(batch, field) for batch in batches]) for field in fields))

    def where(self, keep: np.ndarray) -> "PredictionBatch":
        return PredictionBatch(
            self.ids[keep], self.times[keep], self.versions[keep], self.digits[keep], self.probabilities[keep]
        )


class LabelRecord(TypedDict):
    prediction_id: str
    label: int
    confirmed: bool
    time: float
    predicted: int | None
    version: str | None


def new_prediction_id() -> str:
    return uuid.uuid4().hex


def object_name(folder: str, first_time: float, suffix: str) -> str:
    moment = datetime.fromtimestamp(first_time, UTC)
    return f"{folder}/{moment:%Y-%m-%d}/{moment.strftime(TIME_FORMAT)}-{uuid.uuid4().hex[:8]}.{suffix}"


def write_predictions(location: str | os.PathLike, batch: PredictionBatch) -> str:
    """One new object holding `batch` (not empty, spanning at most BATCH_SLACK_SECONDS: readers look that far back
    for the objects, named by their first record, that hold a window's start): its path in the store."""
    span = float(batch.times.max() - batch.times.min())
    if span > BATCH_SLACK_SECONDS:
        raise ValueError(f"a batch spans {span:.0f} s; write batches of at most {BATCH_SLACK_SECONDS:.0f} s each")
    fs, root = open_store(location)
    buffer = io.BytesIO()
    np.savez(buffer, **{field: getattr(batch, field) for field in PredictionBatch.__dataclass_fields__})
    path = object_name(f"{root}/{PREDICTIONS}", float(batch.times.min()), "npz")
    if not create_exclusive(fs, path, buffer.getvalue()):
        raise FileExistsError(path)  # a fresh random name is taken: never in practice
    return path


def write_labels(location: str | os.PathLike, records: list[LabelRecord]) -> str:
    """One new object holding `records` (not empty): its path in the store."""
    fs, root = open_store(location)
    path = object_name(f"{root}/{LABELS}", min(record["time"] for record in records), "json")
    if not create_exclusive(fs, path, json.dumps(records).encode()):
        raise FileExistsError(path)
    return path


def read_predictions(
    location: str | os.PathLike, since: float, until: float | None = None
) -> tuple[PredictionBatch, list[str]]:
    """The predictions made at `since` <= time < `until` (unix seconds; None: up to now) in time order, and the
    names of the damaged objects skipped."""
    fs, root = open_store(location)
    batches, damaged = [], []
    for path in objects_between(fs, f"{root}/{PREDICTIONS}", since - BATCH_SLACK_SECONDS, until, "npz"):
        try:
            with np.load(io.BytesIO(fs.cat_file(path)), allow_pickle=False) as arrays:
                batch = PredictionBatch.of(*(arrays[field] for field in PredictionBatch.__dataclass_fields__))
        except Exception:  # truncated, not a zip, missing arrays, wrong shapes: named, not fatal
            damaged.append(fs.unstrip_protocol(path))
            continue
        batches.append(batch.where((batch.times >= since) & (batch.times < (np.inf if until is None else until))))
    found = PredictionBatch.concatenate(batches)
    return found.where(np.argsort(found.times, kind="stable")), damaged


def read_labels(location: str | os.PathLike, since: float) -> dict[str, LabelRecord]:
    """{prediction id: its latest label record} of the labels given since `since`; damaged objects are logged
    and skipped (`read_labels_checked` also names them)."""
    return read_labels_checked(location, since)[0]


def read_labels_checked(location: str | os.PathLike, since: float) -> tuple[dict[str, LabelRecord], list[str]]:
    fs, root = open_store(location)
    found: dict[str, LabelRecord] = {}
    damaged = []
    for path in objects_between(fs, f"{root}/{LABELS}", since - BATCH_SLACK_SECONDS, None, "json"):
        try:
            records = [checked_label_record(record) for record in json.loads(fs.cat_file(path))]
        except Exception:  # not JSON, not a list of records
            damaged.append(fs.unstrip_protocol(path))
            logger.warning("skipped a damaged label object: %s", damaged[-1])
            continue
        for record in records:
            if record["time"] >= since and record["time"] >= found.get(record["prediction_id"], record)["time"]:
                found[record["prediction_id"]] = record
    return found, damaged


def checked_label_record(record: dict) -> LabelRecord:
    label, predicted, version = record["label"], record.get("predicted"), record.get("version")
    if not (
        is_digit(label)
        and isinstance(record["confirmed"], bool)
        and (predicted is None or is_digit(predicted))
        and (version is None or isinstance(version, str))
    ):
        raise ValueError(f"not a label record: {str(record)[:200]}")
    return LabelRecord(
        prediction_id=str(record["prediction_id"]),
        label=label,
        confirmed=record["confirmed"],
        time=float(record["time"]),
        predicted=predicted,
        version=version,
    )


def is_digit(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9


def objects_between(fs, folder: str, since: float, until: float | None, suffix: str) -> list[str]:
    """The objects in `folder`'s day folders whose names' times are in [since, until], in name order."""
    first_day = datetime.fromtimestamp(max(since, 0), UTC).strftime("%Y-%m-%d")
    last_day = datetime.fromtimestamp(until, UTC).strftime("%Y-%m-%d") if until is not None else "9999-99-99"
    found = []
    for day in listing(fs, folder):
        if DAY_NAME.fullmatch(day) and first_day <= day <= last_day:
            for name in listing(fs, f"{folder}/{day}"):
                match = OBJECT_NAME.fullmatch(name)
                if match and match[2] == suffix and since <= name_time(match[1]) <= (until or np.inf):
                    found.append(f"{folder}/{day}/{name}")
    return found


def listing(fs, folder: str) -> list[str]:
    try:
        return sorted(path.rstrip("/").rsplit("/", 1)[-1] for path in fs.ls(folder, detail=False))
    except FileNotFoundError:
        return []


def name_time(stamp: str) -> float:
    return datetime.strptime(stamp, TIME_FORMAT).replace(tzinfo=UTC).timestamp()


def delete_older_than(location: str | os.PathLike, cutoff: float) -> int:
    """Delete the prediction and label objects whose names' times are before `cutoff`: how many were deleted."""
    fs, root = open_store(location)
    cutoff_day = f"{datetime.fromtimestamp(cutoff, UTC):%Y-%m-%d}"
    deleted = 0
    for folder in (f"{root}/{PREDICTIONS}", f"{root}/{LABELS}"):
        for day in [day for day in listing(fs, folder) if DAY_NAME.fullmatch(day) and day <= cutoff_day]:
            names = listing(fs, f"{folder}/{day}")
            old = [name for name in names if (match := OBJECT_NAME.fullmatch(name)) and name_time(match[1]) < cutoff]
            for name in old:
                fs.rm_file(f"{folder}/{day}/{name}")
            deleted += len(old)
            if day < cutoff_day and len(old) == len(names) and fs.isdir(f"{folder}/{day}"):
                fs.rmdir(f"{folder}/{day}")  # a local disk keeps empty folders; no writer writes into a past day
    return deleted


def retention_cutoff(days: float, now: float) -> float:
    return (datetime.fromtimestamp(now, UTC) - timedelta(days=days)).timestamp()
