"""`GET /metrics` in the Prometheus text format: requests, latencies, predictions, batches, feedback, the
model serving and the last monitoring verdict. Each app has its own registry, so apps in one process
(tests) count apart."""

import time
from collections.abc import Callable, Iterable

from fastapi import FastAPI, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mnist_pipeline.serving.model_slot import ModelSlot
from mnist_pipeline.serving.verdict import VerdictReader

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PROBABILITY_BUCKETS = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
OTHER_ROUTE = "other"  # a path no route serves, a method no client should send: one label, whatever they are
METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "mnist_http_requests", "HTTP requests answered", ["route", "method", "status"], registry=registry
        )
        self.latency = Histogram(
            "mnist_http_request_duration_seconds",
            "time from a request's arrival to its answer's end",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.predictions = Counter(
            "mnist_predictions", "images predicted, by digit and model version", ["digit", "version"], registry=registry
        )
        self.top_probability = Histogram(
            "mnist_prediction_top_probability",
            "the probability of the predicted digit",
            buckets=PROBABILITY_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "mnist_model_batch_size",
            "images in one model call of the batcher",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.feedback = Counter(
            "mnist_feedback", "feedback received, by outcome in the labeled-data store", ["outcome"], registry=registry
        )
        self.labels = Counter(
            "mnist_prediction_labels",
            "answers given a label by a user: confirmed right, or corrected",
            ["kind"],
            registry=registry,
        )
        self.served = self.labeled = 0
        Gauge(
            "mnist_label_coverage", "answers labeled by users / answers given, since start", registry=registry
        ).set_function(lambda: self.labeled / self.served if self.served else 0.0)
        self.logged = Counter(
            "mnist_prediction_log_records",
            "records of the prediction log: written to the store, or dropped (queue full, a failed write)",
            ["log", "outcome"],
            registry=registry,
        )

    def observe_predictions(self, version: str, digits: list[int], top_probabilities: list[float]) -> None:
        for digit, top in zip(digits, top_probabilities, strict=True):
            self.predictions.labels(str(digit), version).inc()
            self.top_probability.observe(top)
        self.served += len(digits)

    def observe_label(self, confirmed: bool) -> None:
        self.labels.labels("confirmed" if confirmed else "corrected").inc()
        self.labeled += 1

    def count_log(self, log: str, outcome: str, records: int) -> None:
        self.logged.labels(log, outcome).inc(records)

    def watch(self, slot: ModelSlot, verdicts: VerdictReader | None) -> None:
        self.registry.register(SlotCollector(slot))
        if verdicts is not None:
            self.registry.register(VerdictCollector(verdicts))


class SlotCollector:
    """The model serving, its swaps and failed loads, read from the slot at each scrape."""

    def __init__(self, slot: ModelSlot):
        self.slot = slot

    def collect(self):
        loaded = GaugeMetricFamily("mnist_model_loaded", "1 for the version answering now", labels=["version", "model"])
        if (current := self.slot.current) is not None:
            loaded.add_metric([current.version, current.model], 1)
        yield loaded
        yield CounterMetricFamily("mnist_model_swaps", "models replaced by another while serving", self.slot.swaps)
        yield CounterMetricFamily(
            "mnist_model_load_failures", "versions that could not be loaded", self.slot.failed_loads
        )


class VerdictCollector:
    """The last verdict of the monitor flow (`monitoring/last-verdict.json`), read at most every few seconds."""

    def __init__(self, verdicts: VerdictReader):
        self.verdicts = verdicts

    def collect(self):
        verdict = self.verdicts.latest()
        state = GaugeMetricFamily("mnist_monitor_verdict", "1 for the last monitoring verdict", labels=["verdict"])
        alarm = GaugeMetricFamily("mnist_monitor_alarm", "1 where the last monitoring test alarmed", labels=["test"])
        p_value = GaugeMetricFamily("mnist_monitor_p_value", "the last monitoring tests' p-values", labels=["test"])
        accuracy = GaugeMetricFamily("mnist_live_accuracy", "accuracy on the answers users labeled, last monitoring")
        age = GaugeMetricFamily("mnist_monitor_verdict_time", "when the last verdict was made (unix seconds)")
        if verdict is not None:
            state.add_metric([verdict.verdict], 1)
            for name, test in verdict.tests.items():
                alarm.add_metric([name], float(test.alarm))
                if test.p_value is not None:
                    p_value.add_metric([name], test.p_value)
            if verdict.live_accuracy is not None:
                accuracy.add_metric([], verdict.live_accuracy)
            if verdict.time is not None:
                age.add_metric([], verdict.time)
        yield from (state, alarm, p_value, accuracy, age)


def add_metrics_route(app: FastAPI, metrics: ServiceMetrics) -> None:
    @app.get(
        "/metrics", summary="The service's metrics, in the Prometheus text format", response_class=PlainTextResponse
    )
    def scrape() -> Response:  # a plain function: run in a thread, as the verdict may be read from the store
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


def route_template(scope: Scope, known_paths: Callable[[], set[str]]) -> str:
    """The path template of the route that answered (`/predict`, `/static` for the files under it); for a request
    refused before routing, its path if a route has it; else OTHER_ROUTE."""
    route = scope.get("route")
    if route is not None and isinstance(getattr(route, "path", None), str):
        return route.path or "/"
    return scope["path"] if scope["path"] in known_paths() else OTHER_ROUTE


class RequestMetrics:
    """Counts every HTTP request by route template, method and status, and times it (plain ASGI: no task or
    copy of the body per request). Outermost, so that refusals before routing are counted too."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, paths: Callable[[], Iterable[str]]):
        """`paths()`: the paths the app serves, asked once."""
        self.app, self.metrics, self.paths = app, metrics, paths
        self._known: set[str] | None = None

    def known_paths(self) -> set[str]:
        if self._known is None:
            self._known = set(self.paths())
        return self._known

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500

        async def send_counting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counting)
        finally:
            route = route_template(scope, self.known_paths)
            method = scope["method"] if scope["method"] in METHODS else OTHER_ROUTE
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.latency.labels(route, method).observe(time.perf_counter() - started)
