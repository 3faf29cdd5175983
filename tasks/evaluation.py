"""Evaluating a registered model on the test set, and reporting it."""

from pathlib import Path

import numpy as np
from mnist_pipeline.tasks.data import LabeledImages, ScaledImages
from mnist_pipeline.tasks.registry import ModelVersion
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from mnist_pipeline import files, reports, settings
from mnist_pipeline.arrays import ArrayHandle
from mnist_pipeline.evaluation import test_metrics
from mnist_pipeline.registry import Registry


class EvaluationSummary(BaseModel):
    version: str
    accuracy: float
    loss: float
    test_data: str
    output_dir: str


@task(cache_policy=NO_CACHE)
def evaluate_model(model_version: ModelVersion, images: ScaledImages, labels: ArrayHandle) -> dict:
    """Test metrics of the saved model (loaded in Keras's safe mode) and its predicted digits."""
    from mnist_pipeline.models import load_checked_model

    model = load_checked_model(Path(model_version.path))
    probabilities = model.predict(images.images.open(), batch_size=256, verbose=0)
    digits = np.argmax(labels.open(), axis=1)
    return {**test_metrics(probabilities, digits), "predicted": probabilities.argmax(axis=1).tolist()}


@task(cache_policy=NO_CACHE)
def report_evaluation(
    model_version: ModelVersion, result: dict, test: LabeledImages, output_dir: str
) -> EvaluationSummary:
    """Print the study's line; write metrics.json and figures; record the metrics in the registry."""
    version, accuracy, loss = model_version.version, result["accuracy"], result["loss"]
    logger = get_run_logger()
    logger.info("> %.3f", 100 * accuracy)
    logger.info("Test loss: %.4f (%s)", loss, version)

    output = Path(output_dir)
    images = test.images.open()
    digits = np.argmax(test.labels.open(), axis=1)
    predicted = np.asarray(result["predicted"])
    metrics = {name: value for name, value in result.items() if name != "predicted"}
    wrong = np.flatnonzero(predicted != digits)[:9]
    figures = {
        "confusion_matrix.png": reports.png_bytes(
            reports.confusion_matrix_figure(np.asarray(metrics["confusion_matrix"]))
        ),
        "misclassified.png": reports.png_bytes(
            reports.image_grid(images[wrong], [f"true {digits[i]}, predicted {predicted[i]}" for i in wrong])
        ),
    }
    for name, png in figures.items():
        files.write_bytes(output / name, png)
    files.write_json(output / "metrics.json", {"version": version, **metrics})

    test_data = test.images.sha256
    Registry(settings.models_dir()).update_metadata(
        version, test_metrics={"accuracy": accuracy, "loss": loss, "test_data": test_data, "output_dir": str(output)}
    )
    create_table_artifact(
        [
            {
                "digit": row["digit"],
                **{k: round(row[k], 4) for k in ("precision", "recall", "f1")},
                "support": row["support"],
            }
            for row in metrics["per_class"]
        ],
        key="test-per-class",
        description=f"per-class test metrics of {version}",
    )
    create_markdown_artifact(
        f"# Test set: model {version}\n\n```\n> {100 * accuracy:.3f}\n```\n\nLoss {loss:.4f} on {len(digits):,} test images; "
        f"{int((predicted != digits).sum())} misclassified.\n\n"
        + reports.markdown_image(figures["confusion_matrix.png"], "confusion matrix")
        + "\n\n"
        + reports.markdown_image(figures["misclassified.png"], "misclassified test images"),
        key="test-evaluation",
        description=f"{version}: test accuracy {100 * accuracy:.3f}%",
    )
    return EvaluationSummary(version=version, accuracy=accuracy, loss=loss, test_data=test_data, output_dir=str(output))
