import json
from pathlib import Path

import keras
import numpy as np
import pytest
from prefect.exceptions import ParameterTypeError

from mnist_pipeline.flows.evaluate import evaluate
from mnist_pipeline.mnist import read_directory
from mnist_pipeline.models import ModelFileError
from mnist_pipeline.registry import Registry
from tests.flows.conftest import flow_run_artifacts


def test_evaluate_reports_the_test_accuracy_of_the_saved_model(registered_model, mnist_dir, tmp_path):
    summary, artifacts, _ = registered_model
    output = tmp_path / "evaluation"
    state = evaluate(model_version=summary.version, data_dir=str(mnist_dir), output_dir=str(output), return_state=True)
    result = state.result()

    test = read_directory(mnist_dir)
    model = keras.saving.load_model(summary.model_path)
    predicted = model.predict(test.test_images[..., None].astype(np.float32) / 255, verbose=0).argmax(axis=1)
    expected = float(np.mean(predicted == test.test_labels))

    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["version"] == summary.version
    assert metrics["accuracy"] == pytest.approx(expected) == result.accuracy
    assert 0.7 < metrics["accuracy"] <= 1 and metrics["loss"] > 0
    assert [row["digit"] for row in metrics["per_class"]] == list(range(10))
    assert sum(row["support"] for row in metrics["per_class"]) == len(test.test_labels)
    matrix = np.asarray(metrics["confusion_matrix"])
    assert matrix.sum() == len(test.test_labels) and np.trace(matrix) == round(expected * len(test.test_labels))
    for figure in ("confusion_matrix.png", "misclassified.png"):
        assert (output / figure).read_bytes().startswith(b"\x89PNG")

    recorded = Registry(artifacts / "models").metadata(summary.version)["test_metrics"]
    assert recorded["accuracy"] == metrics["accuracy"] and recorded["loss"] == metrics["loss"]
    artifacts_by_key = flow_run_artifacts(state.state_details.flow_run_id)
    assert f"> {100 * expected:.3f}" in artifacts_by_key["test-evaluation"]
    assert "test-per-class" in artifacts_by_key


def test_a_damaged_model_file_is_reported_by_name(registered_model, mnist_dir, tmp_path):
    summary, _, _ = registered_model
    model_file = Path(summary.model_path)
    original = model_file.read_bytes()
    try:
        model_file.write_bytes(b"this is not a model")
        with pytest.raises(ModelFileError, match=f"{model_file} is damaged or not a Keras model"):
            evaluate(model_version=summary.version, data_dir=str(mnist_dir), output_dir=str(tmp_path / "out"))
    finally:
        model_file.write_bytes(original)


@pytest.mark.parametrize("version", ["best", "v12", "champion; rm -rf /"])
def test_version_names_are_validated_before_the_run(prefect_server, version):
    with pytest.raises(ParameterTypeError, match="model_version"):
        evaluate(model_version=version)
