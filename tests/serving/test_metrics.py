"""/metrics through FastAPI's TestClient: scraped and parsed as Prometheus parses it."""

import json

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from mnist_pipeline import settings
from mnist_pipeline.datastore import DataStore
from mnist_pipeline.registry import Registry
from mnist_pipeline.serving.app import create_app
from mnist_pipeline.serving.model_slot import ModelSlot
from mnist_pipeline.serving.verdict import VerdictReader
from tests.serving.conftest import encoded


def scrape(client: TestClient) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of one scrape."""
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def total(samples: dict, name: str, **labels: str) -> float:
    return sum(
        value for (sample, found), value in samples.items() if sample == name and set(labels.items()) <= set(found)
    )


@pytest.fixture
def verdict_folder(tmp_path):
    return tmp_path / "monitoring"


@pytest.fixture
def client(artifacts, verdict_folder):
    slot = ModelSlot(Registry(artifacts / "models"), poll_seconds=3600)
    app = create_app(slot, DataStore(settings.data_store_location()), verdicts=VerdictReader(verdict_folder, 0))
    with TestClient(app) as client:
        yield client


def test_requests_predictions_and_model_are_counted_exactly(client, subset):
    images = [encoded(subset.test_images[index], "PNG") for index in range(12)]
    answers = [client.post("/predict", content=image).json() for image in images]
    form = client.post("/predict", files=[("file", (f"{i}.png", images[i], "image/png")) for i in range(3)])
    answers += form.json()
    for path in ("/no/such/page", "/another/random/path", "/predict/../x"):
        assert client.get(path).status_code == 404
    assert client.post("/predict", content=b"not an image").status_code == 400
    assert client.get("/predict").status_code == 405

    samples = scrape(client)
    assert total(samples, "mnist_predictions_total") == 15
    for digit in range(10):
        expected = sum(answer["digit"] == digit for answer in answers)
        assert total(samples, "mnist_predictions_total", digit=str(digit), version="v0001") == expected
    assert total(samples, "mnist_prediction_top_probability_count") == 15
    top = sum(max(answer["probabilities"]) for answer in answers)
    assert total(samples, "mnist_prediction_top_probability_sum") == pytest.approx(top, abs=1e-4)
    assert total(samples, "mnist_model_batch_size_sum") == 15

    assert total(samples, "mnist_http_requests_total", route="/predict", method="POST", status="200") == 13
    assert total(samples, "mnist_http_requests_total", route="/predict", method="POST", status="400") == 1
    assert total(samples, "mnist_http_requests_total", route="/predict", method="GET", status="405") == 1
    assert total(samples, "mnist_http_requests_total", route="other", status="404") == 3
    routes = {dict(labels).get("route") for name, labels in samples if name == "mnist_http_requests_total"}
    assert routes == {"/predict", "other"}  # no label per random path
    assert total(samples, "mnist_http_request_duration_seconds_count", route="/predict") == 15

    assert samples[("mnist_model_loaded", (("model", "baseline"), ("version", "v0001")))] == 1
    assert total(samples, "mnist_model_swaps_total") == 0
    assert total(samples, "mnist_label_coverage") == 0


def test_feedback_is_counted_by_outcome(client, subset):
    image = encoded(subset.test_images[0], "PNG")
    for _ in range(2):
        assert client.post("/feedback?label=7", content=image).status_code == 200
    samples = scrape(client)
    assert total(samples, "mnist_feedback_total", outcome="added") == 1
    assert total(samples, "mnist_feedback_total", outcome="duplicate") == 1


def test_the_last_verdict_is_exported_and_a_damaged_one_is_not(client, verdict_folder):
    assert total(scrape(client), "mnist_monitor_verdict") == 0  # no monitoring yet
    verdict_folder.mkdir()
    verdict = {
        "version": "v0001",
        "time": "2026-12-04T10:00:00+00:00",
        "verdict": "drift",
        "live_accuracy": 0.93,
        "tests": {
            "predicted_classes": {"statistic": 41.0, "p_value": 0.0001, "alarm": True},
            "top_probability": {"statistic": 0.05, "p_value": 0.4, "alarm": False},
        },
    }
    (verdict_folder / "last-verdict.json").write_text(json.dumps(verdict))
    samples = scrape(client)
    assert samples[("mnist_monitor_verdict", (("verdict", "drift"),))] == 1
    assert samples[("mnist_monitor_alarm", (("test", "predicted_classes"),))] == 1
    assert samples[("mnist_monitor_alarm", (("test", "top_probability"),))] == 0
    assert samples[("mnist_live_accuracy", ())] == pytest.approx(0.93)
    (verdict_folder / "last-verdict.json").write_text('{"verdict": "dri')
    samples = scrape(client)
    assert total(samples, "mnist_monitor_verdict") == 0 and total(samples, "mnist_live_accuracy") == 0
    assert client.get("/healthz").status_code == 200


def test_metrics_can_be_left_out(artifacts):
    slot = ModelSlot(Registry(artifacts / "models"), poll_seconds=3600)
    with TestClient(create_app(slot, DataStore(settings.data_store_location()), metrics=False)) as client:
        assert client.get("/metrics").status_code == 404


def test_the_verdict_is_read_at_most_every_few_seconds(tmp_path):
    reader = VerdictReader(tmp_path, every_seconds=3600)
    assert reader.latest() is None
    (tmp_path / "last-verdict.json").write_text(json.dumps({"verdict": "ok", "time": 1.5e9, "tests": {}}))
    assert reader.latest() is None  # not read again within the hour
    assert VerdictReader(tmp_path, every_seconds=3600).latest().time == 1.5e9
