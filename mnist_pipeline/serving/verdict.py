"""The monitor flow's last verdict, `monitoring/last-verdict.json` in the shared store, as the service reads it
for /metrics: at most every `every_seconds`, and None while it is absent or damaged (logged once)."""

import json
import logging
import math
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from mnist_pipeline.monitoring import LAST_VERDICT_FILE
from mnist_pipeline.shared_store import open_store

logger = logging.getLogger("mnist_pipeline.serving")
VERDICTS = ("ok", "drift", "degraded", "insufficient", "no-reference")


@dataclass(frozen=True)
class TestResult:
    p_value: float | None
    alarm: bool


@dataclass(frozen=True)
class Verdict:
    verdict: str
    time: float | None
    live_accuracy: float | None
    tests: dict[str, TestResult]


def parse_verdict(content: bytes) -> Verdict:
    """ValueError (or KeyError, TypeError) for anything but a verdict record."""
    record = json.loads(content)
    if record["verdict"] not in VERDICTS:
        raise ValueError(f"unknown verdict {str(record['verdict'])[:20]!r}")
    tests = {
        str(name)[:64]: TestResult(number(test.get("p_value")), bool(test.get("alarm")))
        for name, test in (record.get("tests") or {}).items()
    }
    return Verdict(record["verdict"], moment(record.get("time")), number(record.get("live_accuracy")), tests)


def moment(value: object) -> float | None:
    """Unix seconds from unix seconds or an ISO 8601 time (UTC unless it says otherwise), else None."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    return number(value)


def number(value: object) -> float | None:
    """A finite number, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


class VerdictReader:
    def __init__(self, location: str | os.PathLike, every_seconds: float = 30.0):
        self.location, self.every_seconds = str(location), every_seconds
        self._verdict: Verdict | None = None
        self._read_at = -math.inf
        self._problem: str | None = None
        self._lock = threading.Lock()

    def latest(self) -> Verdict | None:
        with self._lock:  # scrapes at once read the file once
            if time.monotonic() - self._read_at >= self.every_seconds:
                self._read_at = time.monotonic()
                self._verdict = self._read()
            return self._verdict

    def _read(self) -> Verdict | None:
        try:
            fs, root = open_store(self.location)
            verdict = parse_verdict(fs.cat_file(f"{root}/{LAST_VERDICT_FILE}"))
        except FileNotFoundError:
            problem, verdict = None, None  # no monitoring yet: nothing to say
        except Exception as error:  # damaged, half a record, the store unreachable: no verdict, service goes on
            problem, verdict = f"{type(error).__name__}: {str(error)[:200]}", None
        else:
            problem = None
        if problem is not None and problem != self._problem:
            logger.warning("the last monitoring verdict in %s could not be read (%s)", self.location, problem)
        self._problem = problem
        return verdict
