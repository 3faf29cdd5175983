"""The prediction service: `POST /predict`, `GET /healthz`, `GET /` (a page to draw a digit on) and
`POST /feedback` (a labeled correction into the labeled-data store)."""

import itertools
import logging
import secrets
from contextlib import asynccontextmanager
from importlib import resources

import numpy as np
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException

from mnist_pipeline.data_checks import ExampleRefused
from mnist_pipeline.datastore import DataStore, LabelError, check_label
from mnist_pipeline.images import ImageError, digit_from_bytes
from mnist_pipeline.serving.batcher import Batcher
from mnist_pipeline.serving.model_slot import ModelSlot
from mnist_pipeline.serving.uploads import DEFAULT_MAX_BODY, ServiceError, read_upload

logger = logging.getLogger("mnist_pipeline.serving")
PAGE = resources.files("mnist_pipeline.serving").joinpath("page.html").read_text()
FEEDBACK_SOURCE = "feedback"


def prepare(name: str, data: bytes) -> np.ndarray:
    """The digit `predict` would see in these bytes, or a 400 naming what is wrong with them."""
    where = "" if name == "body" else f"{name}: "
    try:
        return digit_from_bytes(data)
    except ImageError as error:
        raise ServiceError(400, f"{where}{error}") from None
    except Exception as error:  # Pillow raises more than its documented errors on hostile input
        raise ServiceError(400, f"{where}not a readable image ({type(error).__name__})") from None


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def create_app(
    slot: ModelSlot,
    store: DataStore,
    max_body: int = DEFAULT_MAX_BODY,
    feedback_token: str | None = None,
    data_event_every: int = 100,
) -> FastAPI:
    """`feedback_token`: when set, `/feedback` needs it (header `Authorization: Bearer TOKEN`).
    Every `data_event_every` new corrections send `mnist.data.arrived` (when a Prefect API is configured)."""
    batcher = Batcher()
    corrections = itertools.count(1)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await run_in_threadpool(slot.start)
        batcher.start()
        yield
        slot.stop()
        batcher.stop()

    app = FastAPI(title="mnist-pipeline", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.exception_handler(ServiceError)
    async def refused(_: Request, error: ServiceError) -> JSONResponse:
        return JSONResponse({"error": one_line(error)}, status_code=error.status)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": one_line(error.detail)}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problem = error.errors()[0]
        return JSONResponse({"error": one_line(f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}")}, 422)

    @app.exception_handler(Exception)
    async def failed(_: Request, error: Exception) -> JSONResponse:
        logger.exception("internal error")
        return JSONResponse({"error": f"internal error ({type(error).__name__}); see the service's log"}, 500)

    def serving():
        model = slot.current
        if model is None:
            raise ServiceError(503, f"no model loaded: {slot.problem}")
        return model

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return PAGE

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        model = slot.current
        if model is None:
            return JSONResponse({"status": "unavailable", "error": slot.problem}, status_code=503)
        return JSONResponse(
            {
                "status": "ok",
                "version": model.version,
                "model": model.model,
                "test_accuracy": model.test_accuracy,
                "loaded_at": model.loaded_at,
                "problem": slot.problem,
                "feedback_token_required": feedback_token is not None,
            }
        )

    @app.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        model = serving()  # the whole request runs on this model, whatever is promoted meanwhile
        upload = await read_upload(request, max_body)
        digits = [await run_in_threadpool(prepare, name, data) for name, data in upload.images]
        probabilities = await batcher.predict(model, np.stack(digits))
        answers = [
            {"digit": int(row.argmax()), "probabilities": [round(float(p), 6) for p in row], "version": model.version}
            for row in probabilities
        ]
        return JSONResponse(answers if upload.several else answers[0])

    @app.post("/feedback")
    async def feedback(request: Request) -> JSONResponse:
        if feedback_token is not None:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not secrets.compare_digest(given.encode(), feedback_token.encode()):
                raise ServiceError(401, "feedback needs the service's token: header Authorization: Bearer TOKEN")
        upload = await read_upload(request, max_body)
        if len(upload.images) != 1:
            raise ServiceError(400, "feedback takes one image per request")
        label = request.query_params.get("label", upload.fields.get("label"))
        if label is None:
            raise ServiceError(422, "no label: add ?label=N to the URL or the form field label (a digit 0-9)")
        try:
            label = check_label(label)
        except LabelError as error:
            raise ServiceError(422, str(error)) from None
        digit = await run_in_threadpool(prepare, *upload.images[0])
        try:
            stored = await run_in_threadpool(store.add, digit, label, FEEDBACK_SOURCE)
        except ExampleRefused as error:
            raise ServiceError(422, str(error)) from None
        examples = await run_in_threadpool(store.count)
        if stored["outcome"] == "added" and next(corrections) % data_event_every == 0:
            from mnist_pipeline.tasks.events import emit_data_arrived

            await run_in_threadpool(lambda: emit_data_arrived(store.summary(), data_event_every, FEEDBACK_SOURCE))
        logger.info(
            "feedback: %s labeled %d (%s); %d examples", stored["sha256"][:12], label, stored["outcome"], examples
        )
        return JSONResponse({**stored, "label": label, "examples": examples})

    return app
