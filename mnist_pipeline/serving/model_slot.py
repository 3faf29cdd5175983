"""The model a service answers with, and its live swap when the registry's champion changes.

A request takes `slot.current` once and runs on that model to the end; a new model is loaded and
warmed up in a background thread and then replaces the reference in one assignment, so requests
in flight finish on the model they started on and none waits for a load.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from mnist_pipeline import preprocessing
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.registry import MODEL_FILE, VERSION_PATTERN, Registry

logger = logging.getLogger("mnist_pipeline.serving")
MAX_BACKOFF_SECONDS = 60.0


@dataclass(frozen=True)
class LoadedModel:
    version: str
    model: str
    test_accuracy: float | None
    loaded_at: str
    predict: Callable[[np.ndarray], np.ndarray]  # uint8 digits (N, 28, 28) -> probabilities (N, 10)


def load_version(registry: Registry, version: str) -> LoadedModel:
    """A version's model in safe mode, as one traced TensorFlow function with its scaling, warmed up."""
    import tensorflow as tf

    from mnist_pipeline.models import load_checked_model

    metadata = registry.metadata(version)
    scaling = preprocessing.ScalingStats(**metadata["scaling"])
    model = load_checked_model(registry.model_file(version))
    call = tf.function(
        lambda x: model(x, training=False), input_signature=[tf.TensorSpec((None, 28, 28, 1), tf.float32)]
    )

    def predict(digits: np.ndarray) -> np.ndarray:
        return call(preprocessing.model_input(digits, scaling)).numpy()

    predict(np.zeros((1, 28, 28), np.uint8))  # traced now, not on the first request
    return LoadedModel(
        version=version,
        model=(metadata.get("parameters") or {}).get("model", "unknown"),
        test_accuracy=(metadata.get("test_metrics") or {}).get("accuracy"),
        loaded_at=datetime.now(UTC).isoformat(),
        predict=predict,
    )


class ModelSlot:
    """`current`: the model answering now (None until one loads); `problem`: why the model the registry
    names is not the one serving, if it is not."""

    def __init__(
        self,
        registry: Registry,
        spec: str = "champion",
        poll_seconds: float = 1.0,
        loader: Callable[[Registry, str], LoadedModel] = load_version,
    ):
        self.registry, self.spec, self.poll_seconds, self.loader = registry, spec, poll_seconds, loader
        self.current: LoadedModel | None = None
        self.problem: str | None = "no model loaded yet"
        self._failed: tuple[tuple[str, int], str] | None = None  # (version and its file's stamp, why it failed)
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.swaps = self.failed_loads = 0  # for /metrics

    def refresh(self) -> bool:
        """Load the version the spec names now if it is not the one serving (nor one that just failed).
        False when the registry could not be read, so that the watcher waits longer before asking again."""
        try:
            version = self.registry.resolve(self.spec)
        except PipelineError as error:  # no champion yet, the version asked for is gone, a bad champion record
            self._report(str(error))
            return True
        except Exception as error:  # the store unreachable, a permission, a client's error: keep serving, ask again
            self._report(f"the model registry {self.registry.root} could not be read ({described(error)})")
            return False
        if self.current is not None and self.current.version == version:
            if self.problem is not None:
                logger.info("serving %s, the version the registry names (resolved: %s)", version, self.problem)
            self.problem = None
            return True
        attempt = (version, 0 if self.registry.remote else stamp(self.registry.path(version)))
        if self._failed is not None and self._failed[0] == attempt:
            self._report(self._failed[1])
            return True
        try:
            loaded = self.loader(self.registry, version)
        except Exception as error:  # a damaged file, a model of another shape, missing metadata: keep serving
            self.failed_loads += 1
            self._failed = (
                attempt,
                f"{version} could not be loaded: {str(error).splitlines()[0] if str(error) else error!r}",
            )
            self._report(self._failed[1])
            return True
        previous, self.current, self.problem, self._failed = self.current, loaded, None, None
        self.swaps += previous is not None
        logger.info("serving %s (%s)%s", version, loaded.model, f", replacing {previous.version}" if previous else "")
        return True

    def _report(self, problem: str, traceback: bool = False) -> None:
        """Set `problem`, saying what still serves; logged when it changes, not at every poll."""
        if self.current is not None:
            problem = f"{problem}; still serving {self.current.version}"
        if problem != self.problem:
            logger.error("%s", problem, exc_info=traceback)
        self.problem = problem

    def start(self) -> None:
        """Load now, then follow the registry in the background (a fixed version: until it is loaded)."""
        self.refresh()
        if VERSION_PATTERN.fullmatch(self.spec) and self.current is not None:
            return
        self._watcher = threading.Thread(target=self._watch, name="model-watcher", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        """Poll every `poll_seconds`; while the registry cannot be read, wait twice as long each time, up to
        MAX_BACKOFF_SECONDS. Nothing stops this loop but `stop()`: a dead watcher would serve a stale model."""
        wait = self.poll_seconds
        while not self._stop.wait(wait):
            try:
                answered = self.refresh()
            except Exception as error:  # a bug; the next poll may still pick up a promotion
                self._report(f"the model watcher failed ({described(error)})", traceback=True)
                answered = False
            if VERSION_PATTERN.fullmatch(self.spec) and self.current is not None:
                return
            wait = self.poll_seconds if answered else min(2 * wait, max(MAX_BACKOFF_SECONDS, self.poll_seconds))

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join()


def described(error: Exception) -> str:
    """The error's type and first line (an OSError may have no message)."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def stamp(folder: Path) -> int:
    """The version's model file's modification time in ns (0 if missing): a re-saved model is tried again.
    (In a remote store versions are never rewritten.)"""
    try:
        return (folder / MODEL_FILE).stat().st_mtime_ns
    except OSError:
        return 0
