import json

import pytest
from prefect.exceptions import ParameterTypeError

from flows.retrain import retrain
from mnist_pipeline.registry import Registry
from tests.flows.conftest import flow_run_artifacts


def test_promotion_accepts_the_first_and_an_equal_model_and_rejects_a_worse_one(prefect_server, artifacts_dir, mnist_dir, tmp_path):
    common = {"model": "baseline", "limit": 600, "data_dir": str(mnist_dir), "tolerance": 0.001}
    first = retrain(**common, epochs=2, output_dir=str(tmp_path / "first"))
    assert (first.version, first.promoted, first.previous_champion) == ("v0001", True, None)

    state = retrain(**common, epochs=1, learning_rate=0.0005, output_dir=str(tmp_path / "worse"), return_state=True)
    worse = state.result()
    assert (worse.version, worse.promoted, worse.previous_champion) == ("v0002", False, "v0001")
    assert "< champion v0001's" in worse.reason
    assert "rejected" in flow_run_artifacts(state.state_details.flow_run_id)["model-promotion"]

    same = retrain(**common, epochs=2, output_dir=str(tmp_path / "same"))  # seeded: the same accuracy as v0001
    assert (same.version, same.promoted) == ("v0003", True) and ">= champion v0001's" in same.reason

    registry = Registry(artifacts_dir / "models")
    rows = {row["version"]: row for row in registry.listing()}
    assert {version: row["status"] for version, row in rows.items()} == {"v0001": "archived", "v0002": "rejected", "v0003": "champion"}
    assert rows["v0003"]["test_accuracy"] == rows["v0001"]["test_accuracy"] > rows["v0002"]["test_accuracy"] + 0.001
    assert registry.metadata("v0002")["rejection_reason"] == worse.reason
    promotion = json.loads((tmp_path / "worse" / "promotion.json").read_text())
    assert promotion["promoted"] is False and promotion["version"] == "v0002"
    for run in ("first", "worse", "same"):
        assert json.loads((tmp_path / run / "evaluate" / "metrics.json").read_text())["version"] in rows


def test_a_champion_without_comparable_metrics_is_evaluated_before_the_comparison(prefect_server, artifacts_dir, mnist_dir, tmp_path):
    common = {"model": "baseline", "limit": 300, "epochs": 1, "data_dir": str(mnist_dir)}
    retrain(**common, output_dir=str(tmp_path / "first"))
    registry = Registry(artifacts_dir / "models")
    registry.update_metadata("v0001", test_metrics=None)  # e.g. promoted by hand, never evaluated
    second = retrain(**common, output_dir=str(tmp_path / "second"))
    assert (tmp_path / "second" / "evaluate-v0001" / "metrics.json").is_file()
    assert registry.metadata("v0001")["test_metrics"]["accuracy"] > 0
    assert second.promoted  # the same seeded training: equal accuracy


@pytest.mark.parametrize("bad", [{"tolerance": -0.1}, {"tolerance": 2}, {"epochs": 0}])
def test_bad_parameters_are_refused_before_training(prefect_server, artifacts_dir, bad):
    with pytest.raises(ParameterTypeError):
        retrain(**bad)
    assert not artifacts_dir.exists()
