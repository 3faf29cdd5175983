"""The HTTP routes: each turns a request into one call of the service's core and its answer into JSON.

Bodies are read by the `upload` dependency, streamed and size-checked, never by FastAPI itself (no
`File`/`Form` parameters): their shapes are documented with `openapi_extra` instead.
"""

import secrets
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BeforeValidator

from mnist_pipeline.datastore import LabelError, check_label
from mnist_pipeline.serving.answer_labels import (
    ConfirmedQuery,
    NamedAnswer,
    PredictionIdQuery,
    named_answer,
    record_feedback,
)
from mnist_pipeline.serving.model_slot import LoadedModel
from mnist_pipeline.serving.quota import QuotaExceeded, client_identity
from mnist_pipeline.serving.schemas import ErrorResponse, Health, Prediction, Stored, Unavailable
from mnist_pipeline.serving.service import Service
from mnist_pipeline.serving.uploads import DEFAULT_MAX_FILES, ServiceError, Upload, read_upload

PAGE = resources.files("mnist_pipeline.serving").joinpath("page.html").read_text()

ERRORS = {
    400: "a Host this service does not answer to, or no readable image (the error names which file)",
    401: "the feedback token is missing or wrong",
    403: "a write sent by another web page (its Origin or Sec-Fetch-Site)",
    413: "a body over serve --max-body-mb, or more files than serve --max-files",
    422: "no label, or a label that is not one digit 0-9, or an image the store must not hold",
    429: "this client sent more feedback than serve --feedback-rate-per-minute or --feedback-daily-quota allow "
    "(with a Retry-After header)",
    503: "no model loaded yet, or too many requests in flight (then with a Retry-After header)",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorResponse, "description": ERRORS[status]} for status in statuses}


router = APIRouter(responses=errors(400, 503))  # a Host not allowed, too many requests in flight
pages = APIRouter()


def image_body(description: str, **form_fields: dict[str, Any]) -> dict[str, Any]:
    binary = {"type": "string", "format": "binary"}
    form = {"type": "object", "required": ["file"], "properties": form_fields}
    content = {kind: {"schema": binary} for kind in ("application/octet-stream", "image/png", "image/jpeg")}
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {**content, "multipart/form-data": {"schema": form}},
        }
    }


def service_of(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(service_of)]
bearer = HTTPBearer(auto_error=False, description="the service's feedback token, when it was started with one")


async def serving_model(service: ServiceDep) -> LoadedModel:
    """The model the whole request runs on, whatever is promoted meanwhile."""
    model = service.slot.current
    if model is None:
        raise ServiceError(503, f"no model loaded: {service.problem()}")
    return model


async def upload(request: Request, service: ServiceDep) -> Upload:
    return await read_upload(request, service.max_body, service.max_files)


async def feedback_token(
    service: ServiceDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    if service.feedback_token is None:
        return
    given = credentials.credentials if credentials else ""
    if not secrets.compare_digest(given.encode(), service.feedback_token.encode()):
        raise ServiceError(401, "feedback needs the service's token: header Authorization: Bearer TOKEN")


async def feedback_client(request: Request, service: ServiceDep) -> str:
    """Who sent the correction, counted against its quota before the body is read."""
    client = client_identity(request.client.host if request.client else None)
    try:
        service.recorder.quota.take(client)
    except QuotaExceeded as error:
        raise HTTPException(429, str(error), headers={"Retry-After": str(error.retry_after)}) from None
    return client


def checked_label(value: object) -> int:
    try:
        return check_label(value)
    except LabelError as error:
        raise ValueError(str(error)) from None


async def feedback_label(
    upload: Annotated[Upload, Depends(upload)],
    label: Annotated[
        int | None,
        Query(ge=0, le=9, description="the right digit (or the form field `label`)"),
        BeforeValidator(checked_label),
    ] = None,
) -> int:
    if label is not None:
        return label
    if "label" not in upload.fields:
        raise ServiceError(422, "no label: add ?label=N to the URL or the form field label (a digit 0-9)")
    try:
        return check_label(upload.fields["label"])
    except LabelError as error:
        raise ServiceError(422, str(error)) from None


async def answer_of(
    upload: Annotated[Upload, Depends(upload)],
    prediction_id: PredictionIdQuery = None,
    confirmed: ConfirmedQuery = False,
) -> NamedAnswer:
    return named_answer(upload, prediction_id, confirmed)


@pages.get("/", response_class=HTMLResponse, summary="A page to draw a digit on and see its prediction")
async def page() -> str:
    return PAGE


@router.get(
    "/healthz",
    summary="The model answering",
    response_model=Health,
    responses={503: {"model": Unavailable | ErrorResponse, "description": "no model can be loaded, or busy"}},
)
async def healthz(service: ServiceDep) -> Health | JSONResponse:
    """Its version and test accuracy, or 503 with the reason no model can answer."""
    model = service.slot.current
    if model is None:
        return JSONResponse({"status": "unavailable", "error": service.problem()}, status_code=503)
    return Health(
        status="ok",
        version=model.version,
        model=model.model,
        test_accuracy=model.test_accuracy,
        loaded_at=model.loaded_at,
        problem=service.problem(),
        feedback_token_required=service.feedback_token is not None,
    )


@router.post(
    "/predict",
    summary="The digit in each image",
    response_model=Prediction | list[Prediction],
    responses=errors(403, 413),
    openapi_extra=image_body(
        "one image as the body, or the form field `file` (repeated: answered with a list, in their order)",
        file={"type": "array", "items": {"type": "string", "format": "binary"}, "maxItems": DEFAULT_MAX_FILES},
    ),
)
async def predict(
    service: ServiceDep,
    model: Annotated[LoadedModel, Depends(serving_model)],
    upload: Annotated[Upload, Depends(upload)],
) -> Prediction | list[Prediction]:
    """Images (PNG, JPEG, ...) prepared exactly as `mnist-pipeline predict` prepares them."""
    answers = await service.predictor.predict(model, upload.images)
    return answers if upload.several else answers[0]


@router.post(
    "/feedback",
    summary="A correction: an image and its right label",
    dependencies=[Depends(feedback_token)],
    responses=errors(401, 403, 413, 422, 429),
    openapi_extra=image_body(
        "the image as the body with ?label=N, or the form fields `file` and `label`; `prediction_id` (and "
        "`confirmed`) join the label to an answer, whose image may then be left out if the service logged it",
        file={"type": "string", "format": "binary"},
        label={"type": "integer", "minimum": 0, "maximum": 9},
        prediction_id={"type": "string", "pattern": "^[0-9a-f]{32}$"},
        confirmed={"type": "boolean"},
    ),
)
async def feedback(
    service: ServiceDep,
    client: Annotated[str, Depends(feedback_client)],
    upload: Annotated[Upload, Depends(upload)],
    label: Annotated[int, Depends(feedback_label)],
    answer: Annotated[NamedAnswer, Depends(answer_of)],
) -> Stored:
    """Stored in the labeled-data store that the next retrain learns from, with the client that sent it."""
    return await record_feedback(service, upload, label, client, answer)
