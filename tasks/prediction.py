"""Predicting the digits in image files with a registered model."""

from pathlib import Path

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from mnist_pipeline import preprocessing
from mnist_pipeline.images import ImageError, find_images, load_digit
from mnist_pipeline.preprocessing import ScalingStats


class PredictionSummary(BaseModel):
    version: str
    predictions: list[dict]
    output_dir: str


@task(cache_policy=NO_CACHE)
def predict_digits(images: list[str], model_path: str, scaling: ScalingStats) -> list[dict]:
    """Per input file: `{"file", "digit", "probabilities"}`, or `{"file", "error"}` if it can't be read."""
    from mnist_pipeline.models import load_checked_model

    results, digits = [], []
    for path in find_images(images):
        try:
            digits.append(load_digit(path))
            results.append({"file": str(path)})
        except ImageError as error:
            results.append({"file": str(path), "error": str(error)})
    readable = [result for result in results if "error" not in result]
    if readable:
        model = load_checked_model(Path(model_path))
        x = preprocessing.model_input(np.stack(digits), scaling)
        for result, probabilities in zip(readable, model.predict(x, verbose=0)):
            result["digit"] = int(probabilities.argmax())
            result["probabilities"] = [round(float(p), 6) for p in probabilities]
    return results
