"""What the routes work with: the model slot, the predictor, the feedback recorder, the limits, the metrics
and the prediction log."""

import re
from dataclasses import dataclass

from mnist_pipeline.serving.feedback import FeedbackRecorder
from mnist_pipeline.serving.metrics import ServiceMetrics
from mnist_pipeline.serving.model_slot import ModelSlot
from mnist_pipeline.serving.prediction_logger import PredictionLog
from mnist_pipeline.serving.predictions import Predictor

# An absolute POSIX path (not the tail of a URL nor of a relative path): group 1 is its last part.
ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/<>-])/(?:[^\s'\"/():;,]+/)*([^\s'\"/():;,]+)")
REGISTRY = "<registry>"


@dataclass(frozen=True)
class Service:
    slot: ModelSlot
    predictor: Predictor
    recorder: FeedbackRecorder
    max_body: int
    max_files: int
    feedback_token: str | None
    metrics: ServiceMetrics | None = None
    log: PredictionLog | None = None  # None: --no-prediction-log

    def problem(self) -> str | None:
        """The slot's problem in words that name no path on the server: the registry's root becomes
        <registry>, any other absolute path its last part."""
        return without_paths(self.slot.problem, str(self.slot.registry.root))


def without_paths(text: str | None, registry_root: str) -> str | None:
    if text is None:
        return None
    return ABSOLUTE_PATH.sub(lambda path: f".../{path.group(1)}", text.replace(registry_root, REGISTRY))
