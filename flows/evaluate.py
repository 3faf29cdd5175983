"""Evaluate a registered model on the 10,000 test images."""

from prefect import flow

from mnist_pipeline import settings
from mnist_pipeline.flows import parameters as p
from mnist_pipeline.orchestration.caching import save_shared_result_storage
from mnist_pipeline.tasks.data import download_mnist, normalize_images, prepare_split
from mnist_pipeline.tasks.evaluation import EvaluationSummary, evaluate_model
from mnist_pipeline.tasks.publishing import publish_evaluation, publish_registry
from mnist_pipeline.tasks.registry import record_test_metrics, resolve_version


@flow(name="evaluate", flow_run_name=p.run_name("evaluate-{model_version}"))
@p.described("Test-set accuracy, loss, confusion matrix and per-class scores of a registered model.")
def evaluate(
    model_version: p.ModelVersion = "champion",
    data_dir: p.Folder = "",
    output_dir: p.Folder = "",
) -> EvaluationSummary:
    save_shared_result_storage()
    output = settings.run_dir("evaluate", output_dir)
    version = resolve_version(model_version)
    test = prepare_split(download_mnist(data_dir), "test")
    evaluation = evaluate_model(version.path, normalize_images(test.images, version.scaling), test.labels)
    record_test_metrics(version.version, evaluation, test.images.sha256, str(output))
    publish_evaluation(version.version, evaluation, test, str(output))
    publish_registry()
    return EvaluationSummary(
        version=version.version,
        accuracy=evaluation.accuracy,
        loss=evaluation.loss,
        test_data=test.images.sha256,
        output_dir=str(output),
    )
