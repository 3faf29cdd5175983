"""The service through FastAPI's TestClient, on a registry of small trained models."""

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from mnist_pipeline import preprocessing, settings
from mnist_pipeline.data_checks import mnist_test_digests
from mnist_pipeline.datastore import DataStore
from mnist_pipeline.images import load_digit
from mnist_pipeline.models import load_checked_model
from mnist_pipeline.registry import MODEL_FILE, Registry
from mnist_pipeline.serving.app import create_app
from mnist_pipeline.serving.model_slot import ModelSlot
from tests.serving.conftest import encoded
from tests.serving.test_service import without_id


def client_for(artifacts, **options) -> TestClient:
    slot = ModelSlot(Registry(artifacts / "models"), poll_seconds=3600)
    return TestClient(create_app(slot, DataStore(settings.data_store_location()), **options))


@pytest.fixture
def client(artifacts):
    with client_for(artifacts) as client:
        yield client


def png_bomb(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels (a 1-bit image compresses to almost nothing)."""
    buffer = io.BytesIO()
    Image.new("1", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_predictions_are_predicts_own_on_png_and_jpeg_raw_and_multipart(client, artifacts, subset, tmp_path):
    model = load_checked_model(artifacts / "models" / "v0001" / MODEL_FILE)
    unit = preprocessing.ScalingStats("unit", 0.0, 1.0)
    for index in range(6):
        for image_format in ("PNG", "JPEG"):
            data = encoded(subset.test_images[index], image_format)
            path = tmp_path / f"{index}.{image_format.lower()}"
            path.write_bytes(data)
            expected = model.predict(preprocessing.model_input(load_digit(path)[None], unit), verbose=0)[0]
            raw = client.post("/predict", content=data, headers={"Content-Type": "application/octet-stream"})
            form = client.post("/predict", files={"file": (path.name, data, "image/png")})
            for response in (raw, form):
                assert response.status_code == 200, response.text
                answer = response.json()
                assert answer["version"] == "v0001" and answer["digit"] == int(expected.argmax())
                np.testing.assert_allclose(answer["probabilities"], expected, atol=1e-5)

    several = [("file", (f"{i}.png", encoded(subset.test_images[i], "PNG"), "image/png")) for i in range(5)]
    answers = client.post("/predict", files=several).json()
    singles = [client.post("/predict", content=file[1]).json() for _, file in several]
    assert (
        list(map(without_id, answers)) == list(map(without_id, singles)) and len(answers) == 5
    )  # a list, in the order of the files
    assert len({answer["prediction_id"] for answer in answers + singles}) == 10  # each answer its own id


def test_every_bad_input_gets_its_status_and_one_line_and_the_service_goes_on(artifacts, subset):
    good = encoded(subset.test_images[0], "PNG")
    with client_for(artifacts, max_body=200_000) as client:
        cases = [
            (client.post("/predict", content=b""), 400, "empty"),
            (client.post("/predict", content=b"hello, not an image"), 400, "not an image"),
            (client.post("/predict", content=good[: len(good) // 2]), 400, "truncated"),
            (client.post("/predict", content=png_bomb(8000, 6000)), 400, "too large"),
            (client.post("/predict", content=Image.new("L", (50, 50), 255).tobytes()), 400, "not an image"),
            (client.post("/predict", content=b"x" * 200_001), 413, "over the limit of 200,000 bytes"),
            (client.post("/predict", files={"file": ("a.png", b"x" * 300_000)}), 413, "over the limit"),
            (client.post("/predict", content=(b"x" * 50_000 for _ in range(5))), 413, "over the limit"),  # chunked
            (client.post("/predict", data={"other": "1"}, files={"x": ("a.png", good)}), 400, "form field `file`"),
            (client.post("/predict", files=[("file", ("a.png", good)), ("file", ("b", b"??"))]), 400, "file 2 (b)"),
            (client.post("/feedback?label=x", content=good), 422, "label must be one digit"),
            (client.post("/feedback?label=12", content=good), 422, "got '12'"),
            (client.post("/feedback", files={"file": ("a.png", good)}, data={"label": "-1"}), 422, "got '-1'"),
            (client.post("/feedback", content=good), 422, "no label"),
            (client.post("/feedback?label=3", content=b"GIF89a broken"), 400, "not an image"),
            (client.get("/predict"), 405, "Method Not Allowed"),
            (client.get("/nothing-here"), 404, "Not Found"),
        ]
        for response, status, message in cases:
            assert (response.status_code, list(response.json())) == (status, ["error"]), response.text
            assert message in response.json()["error"] and "\n" not in response.json()["error"]
        assert client.post("/predict", content=good).status_code == 200
        assert DataStore(settings.data_store_location()).count() == 0  # nothing refused was stored


def test_feedback_is_stored_once_counted_and_conflicts_are_reported(client, subset):
    seven, two = (encoded(subset.test_images[index], "PNG") for index in (0, 1))
    first = client.post("/feedback?label=7", content=seven).json()
    assert (first["outcome"], first["examples"], first["label"]) == ("added", 1, 7)
    again = client.post("/feedback", files={"file": ("seven.png", seven)}, data={"label": "7"}).json()
    assert (again["outcome"], again["examples"], again["sha256"]) == ("duplicate", 1, first["sha256"])
    assert client.post("/feedback?label=2", content=two).json()["examples"] == 2
    conflict = client.post("/feedback?label=1", content=seven).json()
    assert (conflict["outcome"], conflict["examples"]) == ("conflict", 1)  # the seven is no longer an example
    summary = DataStore(settings.data_store_location()).summary()
    assert summary["conflicts"] == [{"sha256": first["sha256"], "labels": [1, 7]}]
    assert summary["by_source"] == {"feedback": 1} and summary["by_label"] == {"2": 1}


def test_feedback_refuses_a_copy_of_an_mnist_test_image_and_stores_nothing(artifacts, subset):
    slot = ModelSlot(Registry(artifacts / "models"), poll_seconds=3600)
    store = DataStore(settings.data_store_location(), forbidden=mnist_test_digests())
    copy = io.BytesIO()
    Image.fromarray(subset.test_images[5]).save(copy, format="PNG")
    with TestClient(create_app(slot, store)) as client:
        response = client.post("/feedback?label=3", content=copy.getvalue())
        assert response.status_code == 422 and "a copy of an MNIST test image" in response.json()["error"]
        assert client.post("/feedback?label=7", content=encoded(subset.train_images[0], "PNG")).status_code == 200
    assert store.count() == 1


def test_feedback_needs_the_token_when_one_is_set_and_the_rest_stays_open(artifacts, subset):
    digit = encoded(subset.test_images[0], "PNG")
    with client_for(artifacts, feedback_token="s3cret") as client:
        assert client.post("/feedback?label=7", content=digit).status_code == 401
        wrong = client.post("/feedback?label=7", content=digit, headers={"Authorization": "Bearer guess"})
        assert wrong.status_code == 401 and "token" in wrong.json()["error"]
        assert DataStore(settings.data_store_location()).count() == 0
        right = client.post("/feedback?label=7", content=digit, headers={"Authorization": "Bearer s3cret"})
        assert right.status_code == 200 and right.json()["examples"] == 1
        assert client.post("/predict", content=digit).status_code == 200
        assert client.get("/").status_code == 200 and client.get("/healthz").json()["feedback_token_required"]


def test_health_and_swaps_a_damaged_champion_leaves_the_old_model_serving(artifacts):
    registry = Registry(artifacts / "models")
    slot = ModelSlot(registry, poll_seconds=3600)
    with TestClient(create_app(slot, DataStore(settings.data_store_location()))) as client:
        health = client.get("/healthz").json()
        assert (health["status"], health["version"], health["model"], health["problem"]) == (
            "ok",
            "v0001",
            "baseline",
            None,
        )
        assert health["test_accuracy"] == registry.metadata("v0001")["test_metrics"]["accuracy"]
        registry.promote("v0003", "a damaged file")
        slot.refresh()
        health = client.get("/healthz").json()
        assert health["version"] == "v0001" and "v0003 could not be loaded" in health["problem"]
        registry.promote("v0002", "a good one")
        slot.refresh()
        assert client.get("/healthz").json()["version"] == "v0002"
        assert client.get("/healthz").json()["problem"] is None


def test_without_any_model_health_and_predict_answer_503_with_the_reason(tmp_path, monkeypatch, subset):
    monkeypatch.setenv("MNIST_ARTIFACTS_DIR", str(tmp_path))
    slot = ModelSlot(Registry(settings.models_location()), poll_seconds=3600)
    with TestClient(create_app(slot, DataStore(settings.data_store_location()))) as client:
        health = client.get("/healthz")
        assert health.status_code == 503 and "no champion" in health.json()["error"]
        predicted = client.post("/predict", content=encoded(subset.test_images[0], "PNG"))
        assert predicted.status_code == 503 and "no model loaded" in predicted.json()["error"]
        assert client.get("/").status_code == 200
