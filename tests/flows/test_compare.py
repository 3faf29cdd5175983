import json

from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter

from mnist_pipeline.flows.compare import compare
from tests.flows.conftest import flow_run_artifacts, task_states


def test_compare_cross_validates_each_variant_on_shared_cached_data(prefect_server, artifacts_dir, mnist_dir, tmp_path):
    output = tmp_path / "comparison"
    state = compare(
        models=["baseline"],
        scalings=["unit", "standardize"],
        learning_rates=[0.01],
        folds=2,
        epochs=1,
        limit=300,
        runner="thread",
        data_dir=str(mnist_dir),
        output_dir=str(output),
        return_state=True,
    )
    summary = state.result()
    assert [row["variant"] for row in summary.rows] == ["baseline-unit-lr0.01", "baseline-standardize-lr0.01"]
    for row in summary.rows:
        metrics = json.loads((output / row["variant"] / "metrics.json").read_text())
        assert (row["mean"], row["std"], row["n"]) == (metrics["mean"], metrics["std"], 2) and row["seconds"] > 0
        assert row["training_seconds"] == round(sum(fold["seconds"] for fold in metrics["folds"]), 1) > 0
    assert json.loads((output / "comparison.json").read_text())["variants"] == summary.rows
    assert (output / "comparison_boxplots.png").read_bytes().startswith(b"\x89PNG")
    assert {"variant-comparison", "variant-comparison-summary"} <= set(
        flow_run_artifacts(state.state_details.flow_run_id)
    )

    with get_client(sync_client=True) as client:
        variants = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id={"any_": [state.state_details.flow_run_id]})
        )
    first, second = sorted(variants, key=lambda run: run.start_time)
    assert task_states([first.id], waiting_for=("download_mnist",))["download_mnist"] == ["Completed"]
    second_states = task_states([second.id], waiting_for=("download_mnist", "reshape_images"))
    assert second_states["download_mnist"] == ["Cached"] and second_states["reshape_images"] == ["Cached"]


def test_without_learning_rates_each_model_trains_with_its_own(prefect_server, artifacts_dir, mnist_dir, tmp_path):
    output = tmp_path / "comparison"
    parameters = {
        "models": ["baseline", "improved"],
        "folds": 2,
        "epochs": 1,
        "limit": 200,
        "runner": "thread",
        "data_dir": str(mnist_dir),
    }
    summary = compare(**parameters, output_dir=str(output))
    assert [row["variant"] for row in summary.rows] == ["baseline-unit-lr0.01", "improved-unit-lr0.05"]
    for variant, learning_rate in [("baseline-unit-lr0.01", 0.01), ("improved-unit-lr0.05", 0.05)]:
        assert json.loads((output / variant / "metrics.json").read_text())["params"]["learning_rate"] == learning_rate

    again = compare(**parameters, output_dir=str(tmp_path / "again"))  # every fold cached: no training this time
    assert [row["training_seconds"] for row in again.rows] == [row["training_seconds"] for row in summary.rows]
