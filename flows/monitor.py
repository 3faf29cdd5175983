"""Watch the served model: the last window of its predictions against its reference (docs/MONITORING.md)."""

from typing import Annotated

from prefect import flow
from pydantic import BaseModel, Field

from mnist_pipeline import settings
from mnist_pipeline.flows import parameters as p
from mnist_pipeline.monitoring.verdict import Thresholds
from mnist_pipeline.tasks.monitoring import (
    announce_alarm,
    compute_reference,
    judge_window,
    publish_monitoring,
    read_reference,
    read_window,
    record_last_verdict,
    resolve_monitored_version,
    store_reference,
)

DEFAULTS = Thresholds()


def titled(kind, title: str):
    """`kind` with the UI form's title (Prefect titles fields by the raw names otherwise)."""
    return Annotated[kind, Field(json_schema_extra={"title": title})]


WindowMinutes = titled(Annotated[float, Field(gt=0)], "Window (minutes)")
MinPredictions = titled(Annotated[int, Field(ge=10)], "Min. predictions")
MinLabels = titled(Annotated[int, Field(ge=1)], "Min. labels")
Alpha = titled(Annotated[float, Field(gt=0, lt=1)], "False-alarm rate")


class MonitoringSummary(BaseModel):
    version: str | None
    verdict: str
    reason: str
    event: str | None
    output_dir: str


@flow(name="monitor", flow_run_name=p.run_name("monitor-{model_version}"))
def monitor(
    model_version: titled(p.ModelVersion, "Model version") = "champion",
    window_minutes: WindowMinutes = 60,
    min_predictions: MinPredictions = DEFAULTS.min_predictions,
    min_labels: MinLabels = DEFAULTS.min_labels,
    alpha: Alpha = DEFAULTS.alpha,
    data_dir: titled(p.Folder, "MNIST folder") = "",
    output_dir: titled(p.Folder, "Output folder") = "",
) -> MonitoringSummary:
    """Compare the served model's recent predictions with its reference: live accuracy on the labels users gave,
    the mix of predicted digits, its confidence, and the images themselves; say ok, drift, degraded,
    insufficient or no-reference, and send mnist.model.degraded or mnist.model.drift on an alarm.

    Args:
        model_version: Registered model to watch: champion, latest or a version such as v0003.
        window_minutes: Judge the predictions of the last this many minutes.
        min_predictions: Fewer predictions in the window: insufficient, nothing tested.
        min_labels: Fewer labels (corrections and confirmations) in the window: live accuracy is not tested, and
            without another alarm the verdict is insufficient.
        alpha: The chance that a window like the reference raises an alarm, shared by the six families of tests.
        data_dir: Folder with the MNIST files, to make the reference of a version registered without one. Empty:
            $MNIST_DATA_DIR, else download.
        output_dir: Where results are written. Empty: `artifacts/runs/monitor-<timestamp>/`.
    """
    output = settings.run_dir("monitor", output_dir)
    version = resolve_monitored_version(model_version)
    window = read_window(version, window_minutes)
    reference = read_reference(version)
    if reference.reference is None and version is not None:
        computed = compute_reference(version, data_dir)
        if computed.reference is not None:
            store_reference(version, computed.reference)
        reference = computed
    report = judge_window(window, reference, Thresholds(alpha, min_predictions, min_labels))
    publish_monitoring(report, version, window, reference, str(output))
    record_last_verdict(report, version, window)
    event = announce_alarm(report, version)
    return MonitoringSummary(
        version=version, verdict=str(report.verdict), reason=report.reason, event=event, output_dir=str(output)
    )
