"""Predict the digits in image files with a registered model."""

from mnist_pipeline.flows import parameters as p
from mnist_pipeline.tasks.prediction import PredictionSummary, predict_digits, report_predictions
from mnist_pipeline.tasks.registry import resolve_version
from prefect import flow

from mnist_pipeline import settings


@flow(name="predict", flow_run_name=p.run_name("predict-{images}images"))
@p.described("The digit, and all ten class probabilities, in each image file.")
def predict(
    images: p.Images, model_version: p.ModelVersion = "champion", output_dir: str | None = None
) -> PredictionSummary:
    version = resolve_version(model_version)
    results = predict_digits(images, version)
    return report_predictions(results, version, str(settings.run_dir("predict", output_dir)))
