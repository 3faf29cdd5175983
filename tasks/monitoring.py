"""The monitor flow's tasks: read a window of served predictions and the version's reference, judge the window
(`mnist_pipeline.monitoring`, pure), and record the verdict: the run's files and artifact, the store's last
verdict (the service's /metrics reads it) and an event that an alarm sends."""

import json
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from mnist_pipeline import files, prediction_log, reports, settings
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.monitoring import LAST_VERDICT_FILE
from mnist_pipeline.monitoring.labels import labeled_answers
from mnist_pipeline.monitoring.markdown import report_lines
from mnist_pipeline.monitoring.reference import Reference, ReferenceError, model_reference
from mnist_pipeline.monitoring.verdict import Report, Thresholds, Verdict, Window, judge
from mnist_pipeline.orchestration import stores
from mnist_pipeline.preprocessing import ScalingStats
from mnist_pipeline.shared_store import open_store

EVENTS = {Verdict.DEGRADED: "mnist.model.degraded", Verdict.DRIFT: "mnist.model.drift"}


class WindowRead(NamedTuple):
    window: Window
    times: np.ndarray  # of the predictions
    label_times: np.ndarray
    since: float
    until: float
    damaged: list[str]


class ReferenceRead(NamedTuple):
    reference: Reference | None
    problem: str  # why there is none: "" when there is one


@task(cache_policy=NO_CACHE)
def resolve_monitored_version(model_version: str) -> str | None:
    """The version `model_version` names; None while there is none (no champion yet)."""
    try:
        return stores.registry().resolve(model_version)
    except PipelineError as error:
        get_run_logger().warning("nothing to monitor: %s", error)
        return None


@task(cache_policy=NO_CACHE)
def read_window(version: str | None, window_minutes: float) -> WindowRead:
    """The predictions `version` answered in the last `window_minutes`, and the labels given to them since;
    damaged log objects are named and skipped."""
    until = time.time()
    since = until - 60 * window_minutes
    root = settings.artifacts_url()
    batch, damaged = prediction_log.read_predictions(root, since, until)
    records, damaged_labels = prediction_log.read_labels_checked(root, since)
    batch = batch.where(batch.versions == version)
    answered_by_id = dict(zip(batch.ids.tolist(), batch.probabilities.argmax(axis=1).tolist()))
    joined = labeled_answers(version or "", answered_by_id, records.values())
    for name in damaged + damaged_labels:
        get_run_logger().warning("skipped a damaged prediction log object: %s", name)
    window = Window(batch.digits, batch.probabilities, joined.answered, joined.labels)
    return WindowRead(window, batch.times, joined.times, since, until, damaged + damaged_labels)


@task(cache_policy=NO_CACHE)
def read_reference(version: str | None) -> ReferenceRead:
    """The version's stored reference, or why there is none."""
    if version is None:
        return ReferenceRead(None, "no model version to monitor (no champion yet)")
    data = stores.registry().reference(version)
    if data is None:
        return ReferenceRead(None, f"{version} was registered without a reference")
    try:
        return ReferenceRead(Reference.from_bytes(data), "")
    except ReferenceError as error:
        return ReferenceRead(None, f"{version}'s reference is damaged: {error}")


@task(cache_policy=NO_CACHE)
def compute_reference(version: str, data_dir: str | None) -> ReferenceRead:
    """A reference for a version registered without one: its model on the reference half of MNIST's test set;
    or why it cannot be made (no model file, no MNIST)."""
    from mnist_pipeline import mnist

    registry = stores.registry()
    try:
        _, data = mnist.load(settings.data_dir(data_dir), settings.download_dir())
        scaling = ScalingStats(**registry.metadata(version)["scaling"])
        reference = model_reference(registry.model_file(version), scaling, data.test_images, data.test_labels)
    except (PipelineError, OSError, KeyError) as error:
        return ReferenceRead(None, f"{version} has no reference and none could be made: {error}")
    return ReferenceRead(reference, "")


@task(cache_policy=NO_CACHE)
def store_reference(version: str, reference: Reference) -> None:
    """The reference computed for a version registered without one, kept for the next runs."""
    if stores.registry().add_reference(version, reference.to_bytes()):
        get_run_logger().info("stored the monitoring reference of %s", version)


@task(cache_policy=NO_CACHE)
def judge_window(read: WindowRead, reference: ReferenceRead, thresholds: Thresholds) -> Report:
    return judge(read.window, reference.reference, thresholds, why_no_reference=reference.problem)


def verdict_record(report: Report, version: str | None, read: WindowRead) -> dict[str, Any]:
    """What the run's monitoring.json and the store's last-verdict.json hold."""
    return {
        "version": version,
        "time": read.until,
        "window": {"since": read.since, "until": read.until},
        **report.record(),
        "damaged": read.damaged,
    }


@task(cache_policy=NO_CACHE)
def publish_monitoring(
    report: Report, version: str | None, read: WindowRead, reference: ReferenceRead, output_dir: str
) -> None:
    """monitoring.json, the figures and the `monitoring` markdown artifact in the run."""
    from mnist_pipeline.figures import png_bytes
    from mnist_pipeline.monitoring import figures

    output = Path(output_dir)
    files.write_json(output / "monitoring.json", verdict_record(report, version, read))
    drawn = {}
    window = read.window
    if len(window.probabilities):
        top, correct = window.probabilities.max(axis=1), window.answered == window.labels
        drawn["over_time.png"] = png_bytes(figures.over_time(read.times, top, read.label_times, correct))
    if reference.reference is not None and len(window.probabilities):
        drawn["digit_mix.png"] = png_bytes(
            figures.digit_mix(window.probabilities.argmax(axis=1), reference.reference.predicted)
        )
        window_mean = window.images.astype(np.float32).mean(axis=0) / 255
        drawn["mean_image.png"] = png_bytes(figures.mean_images(reference.reference.mean_image, window_mean))
    for name, png in drawn.items():
        files.write_bytes(output / name, png)
    images = [reports.markdown_image(png, name.removesuffix(".png").replace("_", " ")) for name, png in drawn.items()]
    text = "\n\n".join([*report_lines(report, version, read.damaged), *images])
    create_markdown_artifact(text, key="monitoring", description=f"{version}: {report.verdict}")


@task(cache_policy=NO_CACHE)
def record_last_verdict(report: Report, version: str | None, read: WindowRead) -> None:
    """`monitoring/last-verdict.json` in the shared store, replaced by each run: what /metrics exports."""
    data = json.dumps(verdict_record(report, version, read), indent=2).encode()
    location = settings.shared_location("monitoring")
    if isinstance(location, Path):
        files.write_bytes(location / LAST_VERDICT_FILE, data)
        return
    fs, path = open_store(location)
    fs.pipe_file(f"{path}/{LAST_VERDICT_FILE}", data)


@task(cache_policy=NO_CACHE)
def announce_alarm(report: Report, version: str | None) -> str | None:
    """`mnist.model.degraded` or `mnist.model.drift` about the version, with the tests; the event's name."""
    event = EVENTS.get(report.verdict)
    if event is None or version is None:
        return None
    emit_event(
        event=event,
        resource={"prefect.resource.id": f"mnist.model.{version}", "prefect.resource.name": version},
        payload={
            "reason": report.reason,
            "live_accuracy": report.live_accuracy,
            "reference_accuracy": report.reference_accuracy,
            "predictions": report.predictions,
            "labels": report.labels,
            "tests": {name: test.record() for name, test in report.tests.items()},
        },
    )
    get_run_logger().warning("%s: %s", event, report.reason)
    return event
