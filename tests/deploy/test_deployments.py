"""The deployments of prefect.yaml on a real server and worker: forms, refusals, a run, the schedule."""

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from prefect.client.schemas.filters import FlowRunFilter, LogFilter
from prefect.exceptions import PrefectHTTPStatusError

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENTS = {"cross-validate", "compare", "finalize", "evaluate", "retrain", "predict", "monitor"}
QUICK = {"model": "baseline", "folds": 2, "epochs": 1, "limit": 600}


def test_every_flow_is_deployed_with_a_described_bounded_form(stack):
    with stack.client() as client:
        deployments = client.read_deployments()
    assert {deployment.name for deployment in deployments} == DEPLOYMENTS
    for deployment in deployments:
        assert deployment.work_pool_name == "mnist-pool" and deployment.enforce_parameter_schema
        assert deployment.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}]
        for name, schema in deployment.parameter_openapi_schema["properties"].items():
            assert schema.get("title") and schema.get("description"), (
                f"{deployment.name}: {name} lacks a title or description"
            )
            if name in ("model", "scaling", "runner"):
                assert schema["enum"], f"{deployment.name}: {name} should be a dropdown"
    form = stack.deployment("cross-validate").parameter_openapi_schema["properties"]
    assert form["folds"]["minimum"] == 2 and form["model"]["enum"] == ["baseline", "batchnorm", "deeper", "improved"]
    # optional parameters are plain fields whose 0 or empty default means "not set" (no None toggle in the form)
    assert [
        (form[name]["type"], form[name]["default"]) for name in ("epochs", "learning_rate", "limit", "data_dir")
    ] == [
        ("integer", 0),
        ("number", 0.0),
        ("integer", 0),
        ("string", ""),
    ]
    assert form["epochs"]["minimum"] == 0 and form["learning_rate"]["minimum"] == 0
    assert form["model"]["enum"] == ["baseline", "batchnorm", "deeper", "improved"]  # an ensemble is finalized only
    finalize_form = stack.deployment("finalize").parameter_openapi_schema["properties"]
    assert finalize_form["model"]["enum"] == ["baseline", "batchnorm", "deeper", "improved", "ensemble"]
    assert finalize_form["members"]["minimum"] == 2 and "ensemble" not in finalize_form["member_model"]["enum"]


def test_invalid_parameters_are_refused_before_a_run_exists(stack):
    deployment = stack.deployment("cross-validate")
    runs_before = len(stack.flow_runs(deployment.id))
    with stack.client() as client, pytest.raises(PrefectHTTPStatusError) as refused:
        client.create_flow_run_from_deployment(deployment.id, parameters={**QUICK, "folds": 1})
    assert refused.value.response.status_code == 409
    assert "Validation failed for field 'folds'" in refused.value.response.text
    cli = stack.cli("deployment", "run", "cross-validate/cross-validate", "--param", "folds=1")
    assert cli.returncode == 1 and "Validation failed for field 'folds'" in " ".join((cli.stdout + cli.stderr).split())
    assert len(stack.flow_runs(deployment.id)) == runs_before


def test_with_schema_enforcement_off_the_flow_fails_before_training(stack):
    """The UI's custom-run form can switch enforcement off: the flow itself then refuses folds=1."""
    deployment = stack.deployment("cross-validate")
    with stack.client() as client:
        response = client.request(
            "POST",
            "/deployments/{id}/create_flow_run",
            path_params={"id": deployment.id},
            json={"parameters": {**QUICK, "folds": 1}, "enforce_parameter_schema": False},
        )
    flow_run = stack.wait_for_final_state(response.json()["id"])
    assert flow_run.state.is_failed() and "folds" in flow_run.state.message, flow_run.state
    with stack.client() as client:
        assert client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [flow_run.id]})) == []


def test_api_run_completes_with_artifacts_and_epoch_logs(stack, mnist_dir, tmp_path):
    parameters = {**QUICK, "data_dir": str(mnist_dir), "output_dir": str(tmp_path / "run")}
    with stack.client() as client:
        flow_run = client.create_flow_run_from_deployment(stack.deployment("cross-validate").id, parameters=parameters)
    flow_run = stack.wait_for_final_state(flow_run.id)
    assert flow_run.state.is_completed(), f"{flow_run.state}\n" + stack.log_tail("worker")
    assert flow_run.name == "cv-baseline-2folds"  # named from the run's parameters

    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {name: metrics["params"][name] for name in parameters} == parameters
    assert metrics["n"] == 2 and len(metrics["folds"]) == 2
    with stack.client() as client:
        artifacts = {a.key: a for a in client.read_artifacts() if a.flow_run_id == flow_run.id}
        logs = [log.message for log in client.read_logs(LogFilter(flow_run_id={"any_": [flow_run.id]}))]
    assert set(artifacts) == {
        "cross-validation-summary",
        "cross-validation-folds",
        "training-progress-fold-1",
        "training-progress-fold-2",
    }
    for fold in (1, 2):
        progress = artifacts[f"training-progress-fold-{fold}"]
        assert progress.data == 100 and re.match(rf"fold {fold}: epoch 1/1, .*val_accuracy=\d", progress.description)
    assert "data:image/png;base64," in artifacts["cross-validation-summary"].data
    assert [row["fold"] for row in json.loads(artifacts["cross-validation-folds"].data)] == [1, 2]
    for fold in (1, 2):
        assert any(re.match(rf"fold {fold} epoch 1/1: .*val_accuracy=\d", message) for message in logs), logs


def test_retrain_runs_on_its_weekly_cron_schedule(stack):
    [configured] = [
        d for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"] if d["name"] == "retrain"
    ]
    deployment = stack.deployment("retrain")
    [schedule] = deployment.schedules
    assert schedule.active and schedule.schedule.cron == configured["schedules"][0]["cron"]

    deadline = time.monotonic() + 90
    while (
        len(
            scheduled := stack.flow_runs(
                deployment.id, flow_run_filter=FlowRunFilter(state={"type": {"any_": ["SCHEDULED"]}})
            )
        )
        < 2
    ):
        assert time.monotonic() < deadline, "the server scheduled no retrain runs:\n" + stack.log_tail("server")
        time.sleep(2)
    starts = sorted(flow_run.expected_start_time for flow_run in scheduled)
    assert starts[0] > datetime.now(UTC)
    assert all(later - earlier == timedelta(days=7) for earlier, later in zip(starts, starts[1:]))
