"""Predict the digits in image files with a registered model."""

from prefect import flow

from mnist_pipeline import settings
from mnist_pipeline.flows import parameters as p
from mnist_pipeline.tasks.prediction import PredictionSummary, predict_digits
from mnist_pipeline.tasks.publishing import publish_predictions
from mnist_pipeline.tasks.registry import resolve_version


@flow(name="predict", flow_run_name=p.run_name("predict-{images}images"))
@p.described("The digit, and all ten class probabilities, in each image file.")
def predict(
    images: p.Images, model_version: p.ModelVersion = "champion", output_dir: p.Folder = ""
) -> PredictionSummary:
    output = settings.run_dir("predict", output_dir)
    version = resolve_version(model_version)
    results = predict_digits(images, version.path, version.scaling)
    summary = PredictionSummary(version=version.version, predictions=results, output_dir=str(output))
    publish_predictions(summary)
    return summary
