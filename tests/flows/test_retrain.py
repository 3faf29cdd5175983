import json

import numpy as np
import pytest
from PIL import Image
from prefect.exceptions import ParameterTypeError

from mnist_pipeline.flows.predict import predict
from mnist_pipeline.flows.retrain import retrain
from mnist_pipeline.mnist import read_directory
from mnist_pipeline.registry import Registry
from tests.flows.conftest import flow_run_artifacts


def test_promotion_accepts_the_first_and_an_equal_model_and_rejects_a_worse_one(
    prefect_server, artifacts_dir, mnist_dir, tmp_path
):
    common = {"model": "baseline", "limit": 600, "data_dir": str(mnist_dir), "tolerance": 0.001, "min_accuracy": 0}
    first = retrain(**common, epochs=2, output_dir=str(tmp_path / "first"))
    assert (first.version, first.promoted, first.previous_champion) == ("v0001", True, None)

    state = retrain(**common, epochs=1, learning_rate=0.0005, output_dir=str(tmp_path / "worse"), return_state=True)
    worse = state.result()
    assert (worse.version, worse.promoted, worse.previous_champion) == ("v0002", False, "v0001")
    assert "< champion v0001's" in worse.reason
    assert "rejected" in flow_run_artifacts(state.state_details.flow_run_id)["model-promotion"]

    # seeded: the same accuracy as v0001; forced, as the data and parameters are v0001's
    same = retrain(**common, epochs=2, force=True, output_dir=str(tmp_path / "same"))
    assert (same.version, same.promoted) == ("v0003", True) and ">= champion v0001's" in same.reason

    registry = Registry(artifacts_dir / "models")
    rows = {row["version"]: row for row in registry.listing()}
    assert {version: row["status"] for version, row in rows.items()} == {
        "v0001": "archived",
        "v0002": "rejected",
        "v0003": "champion",
    }
    assert rows["v0003"]["test_accuracy"] == rows["v0001"]["test_accuracy"] > rows["v0002"]["test_accuracy"] + 0.001
    assert registry.metadata("v0002")["rejection_reason"] == worse.reason
    promotion = json.loads((tmp_path / "worse" / "promotion.json").read_text())
    assert promotion["promoted"] is False and promotion["version"] == "v0002"
    for run in ("first", "worse", "same"):
        assert json.loads((tmp_path / run / "evaluate" / "metrics.json").read_text())["version"] in rows


def test_a_champion_without_comparable_metrics_is_evaluated_before_the_comparison(
    prefect_server, artifacts_dir, mnist_dir, tmp_path
):
    common = {"model": "baseline", "limit": 300, "epochs": 1, "data_dir": str(mnist_dir), "min_accuracy": 0}
    retrain(**common, output_dir=str(tmp_path / "first"))
    registry = Registry(artifacts_dir / "models")
    registry.update_metadata("v0001", test_metrics=None)  # e.g. promoted by hand, never evaluated
    second = retrain(**common, force=True, output_dir=str(tmp_path / "second"))
    assert (tmp_path / "second" / "evaluate-v0001" / "metrics.json").is_file()
    assert registry.metadata("v0001")["test_metrics"]["accuracy"] > 0
    assert second.promoted  # the same seeded training: equal accuracy


def test_the_improved_preset_retrains_and_predicts_like_the_study_s_models(
    prefect_server, artifacts_dir, mnist_dir, tmp_path
):
    promotion = retrain(
        model="improved",
        limit=300,
        epochs=1,
        h5=True,
        min_accuracy=0,
        data_dir=str(mnist_dir),
        output_dir=str(tmp_path / "retrain"),
    )
    assert (promotion.version, promotion.promoted) == ("v0001", True)
    metadata = Registry(artifacts_dir / "models").metadata("v0001")
    assert metadata["parameters"]["model"] == "improved" and metadata["test_metrics"]["accuracy"] > 0.1

    digits = read_directory(mnist_dir).test_images[:3]
    for index, digit in enumerate(digits):
        Image.fromarray(digit).save(tmp_path / f"{index}.png")
    summary = predict(
        images=[str(tmp_path / f"{index}.png") for index in range(3)], output_dir=str(tmp_path / "predict")
    )
    assert summary.version == "v0001" and len(summary.predictions) == 3
    assert all(
        0 <= result["digit"] <= 9 and sum(result["probabilities"]) == pytest.approx(1, abs=1e-4)
        for result in summary.predictions
    )

    import keras

    folder = artifacts_dir / "models" / "v0001"
    x = digits[..., None].astype(np.float32) / 255
    from_keras = keras.saving.load_model(folder / "model.keras").predict(x, verbose=0)
    np.testing.assert_allclose(
        keras.saving.load_model(folder / "final_model.h5").predict(x, verbose=0), from_keras, rtol=1e-5, atol=1e-6
    )
    assert [result["digit"] for result in summary.predictions] == list(from_keras.argmax(axis=1))


@pytest.mark.parametrize("bad", [{"tolerance": -0.1}, {"tolerance": 2}, {"epochs": -1}, {"min_accuracy": 1.5}])
def test_bad_parameters_are_refused_before_training(prefect_server, artifacts_dir, bad):
    with pytest.raises(ParameterTypeError):
        retrain(**bad)
    assert not artifacts_dir.exists()
