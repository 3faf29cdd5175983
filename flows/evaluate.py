"""Evaluate a registered model on the 10,000 test images."""

from mnist_pipeline.flows import parameters as p
from mnist_pipeline.tasks.data import download_mnist, normalize_images, reshape_images
from mnist_pipeline.tasks.evaluation import EvaluationSummary, evaluate_model, report_evaluation
from mnist_pipeline.tasks.registry import resolve_version
from prefect import flow

from mnist_pipeline import settings


@flow(name="evaluate", flow_run_name=p.run_name("evaluate-{model_version}"))
@p.described("Test-set accuracy, loss, confusion matrix and per-class scores of a registered model.")
def evaluate(
    model_version: p.ModelVersion = "champion",
    data_dir: str | None = None,
    output_dir: str | None = None,
) -> EvaluationSummary:
    version = resolve_version(model_version)
    test = reshape_images(download_mnist(data_dir), "test")
    scaled = normalize_images(test.images, version.scaling)
    result = evaluate_model(version, scaled, test.labels)
    return report_evaluation(version, result, test, str(settings.run_dir("evaluate", output_dir)))
