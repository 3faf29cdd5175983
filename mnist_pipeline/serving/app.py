"""The prediction service: `POST /predict`, `GET /healthz`, `GET /` (a page to draw a digit on),
`POST /feedback` (a labeled correction into the labeled-data store), `GET /docs` (the API) and `GET /metrics`."""

import logging
from collections.abc import Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from mnist_pipeline import settings
from mnist_pipeline.data_checks import ExampleRefused
from mnist_pipeline.datastore import DataStore
from mnist_pipeline.serving.batcher import Batcher
from mnist_pipeline.serving.decoding import DEFAULT_DECODERS, Decoder
from mnist_pipeline.serving.docs import add_docs, mount_static
from mnist_pipeline.serving.feedback import FeedbackRecorder
from mnist_pipeline.serving.metrics import RequestMetrics, ServiceMetrics, add_metrics_route
from mnist_pipeline.serving.model_slot import ModelSlot
from mnist_pipeline.serving.prediction_logger import LogSettings, PredictionLog
from mnist_pipeline.serving.predictions import Predictor
from mnist_pipeline.serving.quota import FeedbackQuota
from mnist_pipeline.serving.routes import pages, router
from mnist_pipeline.serving.security import (
    ANY_HOST,
    DEFAULT_MAX_CONCURRENT,
    HostCheck,
    InFlightLimit,
    SameOriginWrites,
    SecurityHeaders,
)
from mnist_pipeline.serving.service import Service
from mnist_pipeline.serving.uploads import DEFAULT_MAX_BODY, DEFAULT_MAX_FILES, ServiceError
from mnist_pipeline.serving.verdict import VerdictReader

logger = logging.getLogger("mnist_pipeline.serving")


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def create_app(
    slot: ModelSlot,
    store: DataStore,
    max_body: int = DEFAULT_MAX_BODY,
    feedback_token: str | None = None,
    data_event_every: int = 100,
    max_files: int = DEFAULT_MAX_FILES,
    max_concurrent: int = DEFAULT_MAX_CONCURRENT,
    decoders: int = DEFAULT_DECODERS,
    allowed_hosts: Sequence[str] = (ANY_HOST,),
    feedback_quota: FeedbackQuota | None = None,
    metrics: bool = True,
    prediction_log: LogSettings | None = None,
    verdicts: VerdictReader | None = None,
) -> FastAPI:
    """`feedback_token`: when set, `/feedback` needs it (header `Authorization: Bearer TOKEN`).
    Every `data_event_every` new corrections send `mnist.data.arrived` (when a Prefect API is configured).
    At most `max_files` images a request, `max_concurrent` requests in flight (then 503), `decoders` images
    decoded at once; only requests whose Host names one of `allowed_hosts` are answered (`serve` passes
    the loopback names and its --host; `*` is any). `feedback_quota`: each client's feedback rate and daily quota
    (its defaults when None).
    `metrics`: serve /metrics; `prediction_log`: where and how much of the answers to log (None: none);
    `verdicts`: the monitor's last verdict for /metrics (default: `monitoring/` in the shared store)."""
    counters = ServiceMetrics() if metrics else None
    log = PredictionLog(prediction_log, counters.count_log if counters else lambda *_: None) if prediction_log else None
    batcher = Batcher(observe_batch=counters.batch_size.observe if counters else None)
    decoder = Decoder(decoders)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await run_in_threadpool(slot.start)
        batcher.start()
        decoder.start()
        if log is not None:
            log.start()
        yield
        slot.stop()
        batcher.stop()
        decoder.stop()
        if log is not None:
            log.stop()  # writes what is queued

    middleware = [
        Middleware(InFlightLimit, limit=max_concurrent),
        Middleware(HostCheck, allowed=allowed_hosts),
        Middleware(SameOriginWrites),
        Middleware(SecurityHeaders),
    ]
    app = FastAPI(
        title="mnist-pipeline",
        summary="Handwritten digits read by the registry's champion model",
        lifespan=lifespan,
        middleware=middleware,
        docs_url=None,  # served by add_docs, from the service's own files
        redoc_url=None,
    )
    app.state.service = Service(
        slot=slot,
        predictor=Predictor(decoder, batcher, counters, log),
        recorder=FeedbackRecorder(store, decoder, data_event_every, feedback_quota),
        max_body=max_body,
        max_files=max_files,
        feedback_token=feedback_token,
        metrics=counters,
        log=log,
    )
    if counters is not None:
        counters.watch(slot, verdicts or VerdictReader(settings.shared_location("monitoring")))
        add_metrics_route(app, counters)
        # outermost, so that refusals are counted too
        app.add_middleware(RequestMetrics, metrics=counters, paths=lambda: app.openapi()["paths"])
    app.include_router(pages)
    app.include_router(router)
    add_docs(app)
    mount_static(app)
    add_error_handlers(app)
    return app


def add_error_handlers(app: FastAPI) -> None:
    """Every refusal as `{"error": "one line"}` with its status."""

    @app.exception_handler(ServiceError)
    async def refused(_: Request, error: ServiceError) -> JSONResponse:
        return JSONResponse({"error": one_line(error)}, status_code=error.status)

    @app.exception_handler(ExampleRefused)
    async def not_storable(_: Request, error: ExampleRefused) -> JSONResponse:
        return JSONResponse({"error": one_line(error)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": one_line(error.detail)}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problem = error.errors()[0]
        cause = (problem.get("ctx") or {}).get("error")  # a validator's own words, without "Value error, "
        message = str(cause) if isinstance(cause, Exception) else problem["msg"]
        return JSONResponse({"error": one_line(f"{'.'.join(map(str, problem['loc']))}: {message}")}, 422)

    @app.exception_handler(Exception)
    async def failed(_: Request, error: Exception) -> JSONResponse:
        logger.exception("internal error")
        return JSONResponse({"error": f"internal error ({type(error).__name__}); see the service's log"}, 500)
