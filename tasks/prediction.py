"""Predicting the digits in image files with a registered model."""

from pathlib import Path

import numpy as np
from mnist_pipeline.tasks.registry import ModelVersion
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from mnist_pipeline import files, preprocessing
from mnist_pipeline.images import ImageError, find_images, load_digit


class PredictionSummary(BaseModel):
    version: str
    predictions: list[dict]
    output_dir: str


@task(cache_policy=NO_CACHE)
def predict_digits(images: list[str], model_version: ModelVersion) -> list[dict]:
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
        model = load_checked_model(Path(model_version.path))
        x = preprocessing.apply_scaling(preprocessing.add_channel_axis(np.stack(digits)), model_version.scaling)
        for result, probabilities in zip(readable, model.predict(x, verbose=0)):
            result["digit"] = int(probabilities.argmax())
            result["probabilities"] = [round(float(p), 6) for p in probabilities]
    return results


@task(cache_policy=NO_CACHE)
def report_predictions(results: list[dict], model_version: ModelVersion, output_dir: str) -> PredictionSummary:
    logger = get_run_logger()
    for result in results:
        if "error" in result:
            logger.warning("%s: %s", result["file"], result["error"])
        else:
            logger.info("%s: %d (p=%.3f)", result["file"], result["digit"], max(result["probabilities"]))
    files.write_json(Path(output_dir) / "predictions.json", {"version": model_version.version, "predictions": results})
    create_table_artifact(
        [
            {
                "file": r["file"],
                "digit": r.get("digit", ""),
                "probability": round(max(r["probabilities"]), 4) if "digit" in r else "",
                "error": r.get("error", ""),
            }
            for r in results
        ],
        key="predictions",
        description=f"digits predicted by model {model_version.version}",
    )
    return PredictionSummary(version=model_version.version, predictions=results, output_dir=output_dir)
