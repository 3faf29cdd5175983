"""Feedback on one answer: the label joins the logged prediction that `prediction_id` names, so that the
monitor measures live accuracy; a confirmed answer ("✓ right") is a label as much as a correction is.

The example stored is the logged digit when the service still holds it (what the model saw), else the image
the client sends with the id (the page always does; the prediction may not have been sampled, the log may be
off, or the service restarted)."""

import re
from dataclasses import dataclass
from typing import Annotated

import numpy as np
from fastapi import Query

from mnist_pipeline.serving.feedback import FEEDBACK_SOURCE
from mnist_pipeline.serving.schemas import Stored
from mnist_pipeline.serving.service import Service
from mnist_pipeline.serving.uploads import ServiceError, Upload

PREDICTION_ID = re.compile(r"[0-9a-f]{32}")
CONFIRMED_SOURCE = "confirmed"
YES = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class NamedAnswer:
    prediction_id: str | None
    confirmed: bool


PredictionIdQuery = Annotated[
    str | None, Query(description="the answer this label is about (or the form field `prediction_id`)")
]
ConfirmedQuery = Annotated[
    bool, Query(description="the answer was right, `label` is the digit answered (or the form field `confirmed`)")
]


def named_answer(upload: Upload, prediction_id: str | None, confirmed: bool) -> NamedAnswer:
    prediction_id = prediction_id or upload.fields.get("prediction_id") or None
    confirmed = confirmed or upload.fields.get("confirmed", "").strip().lower() in YES
    if prediction_id is not None and not PREDICTION_ID.fullmatch(prediction_id):
        raise ServiceError(422, "prediction_id: not an answer's id (32 hex digits, as /predict gives it)")
    if confirmed and prediction_id is None:
        raise ServiceError(422, "confirmed needs the prediction_id of the answer confirmed")
    return NamedAnswer(prediction_id, confirmed)


def example_image(service: Service, upload: Upload, label: int, named: NamedAnswer) -> tuple[str, bytes] | np.ndarray:
    """The logged digit of the named answer if the service holds it, else the uploaded image."""
    logged = service.log.find(named.prediction_id) if service.log and named.prediction_id else None
    if logged is not None and named.confirmed and logged.predicted != label:
        raise ServiceError(422, f"confirmed label {label} is not the digit answered ({logged.predicted})")
    if logged is not None:
        return logged.digit
    if len(upload.images) == 1 and not upload.images[0][1] and named.prediction_id:
        raise ServiceError(
            422,
            f"prediction {named.prediction_id} is not in this service's log (not sampled, logging off, or "
            "answered before a restart): send its image too",
        )
    return upload.single()


async def record_feedback(service: Service, upload: Upload, label: int, client: str, named: NamedAnswer) -> Stored:
    image = example_image(service, upload, label, named)
    source = CONFIRMED_SOURCE if named.confirmed else FEEDBACK_SOURCE
    stored = await service.recorder.record(image, label, client, source)
    if named.prediction_id is not None and service.log is not None:
        service.log.label(named.prediction_id, label, named.confirmed)
    if service.metrics is not None:
        service.metrics.feedback.labels(stored.outcome).inc()
        if named.prediction_id is not None:
            service.metrics.observe_label(named.confirmed)
    return stored.model_copy(update={"prediction_id": named.prediction_id})
