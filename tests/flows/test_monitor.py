"""The monitor flow on the session's Prefect server: a window of logged predictions judged against the reference made
at registration, a version without one getting it on first use, a damaged log object named and skipped, and no
version at all; each run writes its artifact, monitoring.json and the store's last-verdict.json."""

import json
import shutil
import time

import numpy as np

from mnist_pipeline import prediction_log, settings
from mnist_pipeline.flows.monitor import monitor
from mnist_pipeline.mnist import read_directory
from mnist_pipeline.registry import METADATA_FILE, REFERENCE_FILE, default_registry
from tests.flows.conftest import flow_run_artifacts


def log_predictions(version: str, images: np.ndarray, probabilities: np.ndarray, labels: np.ndarray) -> None:
    now = time.time()
    ids = [prediction_log.new_prediction_id() for _ in images]
    batch = prediction_log.PredictionBatch.of(
        ids, now - np.linspace(1800, 0, len(ids)), [version] * len(ids), images, probabilities
    )
    prediction_log.write_predictions(settings.artifacts_url(), batch)
    records = [
        {"prediction_id": i, "label": int(label), "confirmed": False, "time": now, "predicted": None, "version": None}
        for i, label in zip(ids, labels)
    ]
    prediction_log.write_labels(settings.artifacts_url(), records)


def last_verdict() -> dict:
    return json.loads((settings.artifacts_dir() / "monitoring" / "last-verdict.json").read_text())


def test_served_predictions_are_judged_against_the_reference_made_at_registration(registered_model, mnist_dir):
    summary, artifacts, patch = registered_model
    registry = default_registry()
    assert registry.reference(summary.version) is not None
    from mnist_pipeline.models import load_checked_model

    mnist = read_directory(mnist_dir)
    probabilities = load_checked_model(registry.model_file(summary.version)).predict(
        mnist.test_images[:, :, :, None] / 255.0, verbose=0
    )
    log_predictions(summary.version, mnist.test_images, probabilities, mnist.test_labels)
    result = monitor(
        model_version=summary.version, min_predictions=50, min_labels=20, output_dir=str(artifacts / "monitor")
    )
    assert result.verdict in ("ok", "drift") and result.event in (None, "mnist.model.drift"), result.reason
    written = json.loads((artifacts / "monitor" / "monitoring.json").read_text())
    assert written["predictions"] == len(mnist.test_images) and written["labels"] == len(mnist.test_labels)
    assert {"accuracy", "predicted mix", "images", "digit statistics"} <= set(written["tests"])
    assert {p.name for p in (artifacts / "monitor").iterdir()} >= {"over_time.png", "digit_mix.png", "mean_image.png"}
    record = last_verdict()
    assert (record["version"], record["verdict"]) == (summary.version, result.verdict)
    assert isinstance(record["live_accuracy"], float) and record["tests"]["accuracy"]["p_value"] >= 0
    [artifact] = [data for key, data in flow_run_artifacts(monitor_run_id()).items() if key == "monitoring"]
    assert "| accuracy |" in artifact and "Wilson interval" in artifact


def monitor_run_id():
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        [run] = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name={"like_": "monitor-"}), sort=FlowRunSort.START_TIME_DESC, limit=1
        )
    return run.id


def test_a_version_without_reference_gets_one_and_a_damaged_log_object_is_named_not_fatal(registered_model, mnist_dir):
    summary, artifacts, patch = registered_model
    registry = default_registry()
    with registry.staging() as staged:  # a version as registered before references existed
        shutil.copyfile(registry.model_file(summary.version), staged / "model.keras")
        metadata = json.loads((registry.path(summary.version) / METADATA_FILE).read_text())
        old = registry.publish(staged, metadata)
    assert registry.reference(old) is None
    damaged = settings.artifacts_dir() / "predictions" / time.strftime("%Y-%m-%d", time.gmtime())
    damaged.mkdir(parents=True, exist_ok=True)
    (damaged / f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}000000-0badc0de.npz").write_bytes(b"not a zip")
    result = monitor(model_version=old, data_dir=str(mnist_dir), output_dir=str(artifacts / "monitor-old"))
    assert result.verdict == "insufficient" and result.reason.startswith("0 predictions"), result.reason
    assert registry.reference(old) is not None and (registry.path(old) / REFERENCE_FILE).is_file()
    written = json.loads((artifacts / "monitor-old" / "monitoring.json").read_text())
    [named] = written["damaged"]
    assert named.endswith("-0badc0de.npz")
    assert last_verdict()["verdict"] == "insufficient"


def test_no_version_to_monitor_is_a_verdict_not_a_crash(prefect_server, artifacts_dir):
    result = monitor(output_dir=str(artifacts_dir / "monitor"))
    assert (result.verdict, result.version, result.event) == ("no-reference", None, None)
    assert "no champion" in result.reason
    assert last_verdict()["verdict"] == "no-reference"
