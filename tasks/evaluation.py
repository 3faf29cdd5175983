"""Evaluating a registered model on the test set."""

from pathlib import Path

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from mnist_pipeline.arrays import ArrayHandle
from mnist_pipeline.evaluation import test_metrics
from mnist_pipeline.tasks.data import ScaledImages


class TestEvaluation(BaseModel):
    """A model's test metrics and the digit it predicted for each test image."""

    __test__ = False  # not a pytest test class, despite its name

    accuracy: float
    loss: float
    per_class: list[dict[str, int | float]]
    confusion_matrix: list[list[int]]
    predicted: list[int]


class EvaluationSummary(BaseModel):
    version: str
    accuracy: float
    loss: float
    test_data: str
    output_dir: str


@task(cache_policy=NO_CACHE)
def evaluate_model(model_path: str, images: ScaledImages, labels: ArrayHandle) -> TestEvaluation:
    """Test metrics of the saved model (loaded in Keras's safe mode) and its predicted digits."""
    from mnist_pipeline.models import load_checked_model

    probabilities = load_checked_model(Path(model_path)).predict(images.images.open(), batch_size=256, verbose=0)
    digits = np.argmax(labels.open(), axis=1)
    return TestEvaluation(**test_metrics(probabilities, digits), predicted=probabilities.argmax(axis=1).tolist())
