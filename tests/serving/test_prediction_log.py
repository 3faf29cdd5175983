"""The prediction log: answers and labels written in batches to the shared store and read back as the monitor
reads them; feedback naming an answer joins it."""

import time
import uuid

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from mnist_pipeline import prediction_log, settings
from mnist_pipeline.datastore import DataStore
from mnist_pipeline.prediction_log import PredictionBatch, read_labels, read_predictions
from mnist_pipeline.registry import Registry
from mnist_pipeline.serving.app import create_app
from mnist_pipeline.serving.batch_writer import BatchWriter
from mnist_pipeline.serving.model_slot import ModelSlot
from mnist_pipeline.serving.prediction_logger import LogSettings, PredictionLog
from mnist_pipeline.shared_store import open_store
from tests.serving.conftest import encoded


def client_for(artifacts, root, **log_options) -> TestClient:
    slot = ModelSlot(Registry(artifacts / "models"), poll_seconds=3600)
    log = LogSettings(root, **log_options)
    return TestClient(create_app(slot, DataStore(settings.data_store_location()), prediction_log=log))


def objects(root, folder="predictions") -> list:
    return sorted((root / folder).rglob("*.*"))


def test_answers_are_logged_with_their_ids_digits_and_probabilities(artifacts, subset, tmp_path):
    started = time.time()
    with client_for(artifacts, tmp_path, flush_count=4, flush_seconds=60) as client:
        answers = [client.post("/predict", content=encoded(subset.test_images[i], "PNG")).json() for i in range(10)]
        assert len(objects(tmp_path)) == 2  # two batches of 4 by count; 2 answers still queued
    assert len(objects(tmp_path)) == 3  # the rest written on stopping
    logged, damaged = read_predictions(tmp_path, started)
    assert damaged == []
    assert list(logged.ids) == [answer["prediction_id"] for answer in answers]
    assert set(logged.versions) == {"v0001"} and logged.digits.shape == (10, 28, 28)
    np.testing.assert_allclose(logged.probabilities, [answer["probabilities"] for answer in answers], atol=1e-5)
    assert (logged.times >= started).all() and (logged.times <= time.time()).all()
    assert len(read_predictions(tmp_path, time.time() + 1)[0]) == 0


def test_a_batch_is_written_after_flush_seconds_without_waiting_for_more(artifacts, subset, tmp_path):
    with client_for(artifacts, tmp_path, flush_seconds=0.3) as client:
        client.post("/predict", content=encoded(subset.test_images[0], "PNG"))
        deadline = time.monotonic() + 10
        while not objects(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(objects(tmp_path)) == 1


def test_sampling_nothing_writes_nothing(artifacts, subset, tmp_path):
    with client_for(artifacts, tmp_path, sample=0.0) as client:
        for index in range(5):
            assert client.post("/predict", content=encoded(subset.test_images[index], "PNG")).status_code == 200
    assert objects(tmp_path) == []


def test_retention_deletes_old_objects_and_keeps_new_ones(artifacts, tmp_path):
    now = time.time()
    for age_days in (40, 31, 1):
        moment = now - age_days * 86400
        batch = PredictionBatch.of(["a" * 32], [moment], ["v0001"], np.zeros((1, 28, 28)), np.full((1, 10), 0.1))
        prediction_log.write_predictions(tmp_path, batch)
    label = {"prediction_id": "a" * 32, "label": 1, "confirmed": False, "time": now - 35 * 86400}
    prediction_log.write_labels(tmp_path, [{**label, "predicted": None, "version": None}])
    with client_for(artifacts, tmp_path, retention_days=30):
        pass  # the writer deletes on starting, then at most once an hour
    assert len(objects(tmp_path)) == 1 and objects(tmp_path, "prediction-labels") == []
    assert len(read_predictions(tmp_path, 0)[0]) == 1


def test_a_damaged_object_is_named_and_skipped(tmp_path):
    now = time.time()
    good = PredictionBatch.of(["b" * 32], [now], ["v0002"], np.zeros((1, 28, 28)), np.full((1, 10), 0.1))
    prediction_log.write_predictions(tmp_path, good)
    damaged = prediction_log.write_predictions(tmp_path, good)
    with open(damaged, "r+b") as file:
        file.truncate(100)
    (tmp_path / "predictions" / "notes.txt").write_text("not a day folder")
    logged, skipped = read_predictions(tmp_path, now - 10)
    assert list(logged.ids) == ["b" * 32] and skipped == [f"file://{damaged}"]


def test_feedback_naming_an_answer_joins_it_with_or_without_its_image(artifacts, subset, tmp_path):
    started = time.time()
    with client_for(artifacts, tmp_path, flush_seconds=60) as client:
        images = [encoded(subset.test_images[i], "PNG") for i in range(3)]
        answers = [client.post("/predict", content=image).json() for image in images]
        wrong = (answers[0]["digit"] + 1) % 10
        joined = client.post(f"/feedback?label={wrong}&prediction_id={answers[0]['prediction_id']}")  # no image
        assert joined.status_code == 200, joined.text
        assert joined.json()["prediction_id"] == answers[0]["prediction_id"]
        right = answers[1]["digit"]
        confirmed = client.post(
            "/feedback",
            files={"file": ("1.png", images[1], "image/png")},
            data={"label": str(right), "prediction_id": answers[1]["prediction_id"], "confirmed": "true"},
        )
        assert confirmed.status_code == 200 and confirmed.json()["outcome"] == "added"
        liar = client.post(
            f"/feedback?label={(answers[2]['digit'] + 1) % 10}&prediction_id={answers[2]['prediction_id']}&confirmed=1"
        )
        assert liar.status_code == 422 and "not the digit answered" in liar.json()["error"]
        unknown = client.post(f"/feedback?label=3&prediction_id={'c' * 32}")
        assert unknown.status_code == 422 and "send its image too" in unknown.json()["error"]
        assert client.post(f"/feedback?label=3&prediction_id={'c' * 32}", content=images[2]).status_code == 200
        assert client.post("/feedback?label=3&prediction_id=../../x", content=images[2]).status_code == 422
        metrics = client.get("/metrics").text
    labels = read_labels(tmp_path, started)
    assert labels[answers[0]["prediction_id"]] == {
        **labels[answers[0]["prediction_id"]],
        "label": wrong,
        "confirmed": False,
        "predicted": answers[0]["digit"],
        "version": "v0001",
    }
    assert labels[answers[1]["prediction_id"]]["confirmed"] is True
    assert labels["c" * 32]["predicted"] is None and answers[2]["prediction_id"] not in labels
    sources = {record["source"] for record in DataStore(settings.data_store_location()).records()}
    assert sources == {"feedback", "confirmed"}
    samples = {
        (sample.name, tuple(sample.labels.values())): sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
    }
    assert samples[("mnist_prediction_labels_total", ("confirmed",))] == 1
    assert samples[("mnist_prediction_labels_total", ("corrected",))] == 2
    assert samples[("mnist_label_coverage", ())] == pytest.approx(3 / 3)


def test_a_failing_store_drops_the_batch_and_the_writer_goes_on():
    written, counts = [], []

    def write(records):
        if records == [1]:
            raise OSError("the store is down")
        written.append(records)

    writer = BatchWriter("test", write, flush_count=1, flush_seconds=60, counted=lambda *count: counts.append(count))
    writer.start()
    writer.add(1)
    writer.add(2)
    writer.stop()
    assert written == [[2]] and counts == [("dropped", 1), ("written", 1)]


def test_on_s3_answers_go_in_batches_and_come_back(s3_bucket, monkeypatch):
    monkeypatch.setenv("MNIST_ARTIFACTS_URL", s3_bucket)
    started = time.time()
    log = PredictionLog(LogSettings(s3_bucket, flush_count=4, flush_seconds=60))
    log.start()
    ids = [uuid.uuid4().hex for _ in range(10)]
    for index, prediction_id in enumerate(ids):
        log.record("v0003", [prediction_id], np.full((1, 28, 28), index, np.uint8), np.full((1, 10), 0.1))
    log.label(ids[0], 5, confirmed=False)
    log.stop()
    fs, root = open_store(s3_bucket)
    assert len(fs.find(f"{root}/predictions")) == 3 and len(fs.find(f"{root}/prediction-labels")) == 1
    logged, damaged = read_predictions(s3_bucket, started)
    assert list(logged.ids) == ids and damaged == [] and logged.digits[9].max() == 9
    assert read_labels(s3_bucket, started)[ids[0]]["label"] == 5
    fs.pipe_file(
        f"{root}/predictions/{time.strftime('%Y-%m-%d', time.gmtime())}/20200101T000000000000-0badf00d.npz", b"x"
    )
    assert len(read_predictions(s3_bucket, 0)[1]) == 1  # named, and the rest still read
    assert prediction_log.delete_older_than(s3_bucket, time.time() + 1) == 5
    assert fs.find(f"{root}/predictions") == []


def test_a_batch_longer_than_readers_look_back_is_refused_and_nothing_written(tmp_path):
    """Objects are named by their first record and readers look back BATCH_SLACK_SECONDS for a window's start:
    a longer batch would hide its later records from every window, so it is refused."""
    span = prediction_log.BATCH_SLACK_SECONDS + 1
    batch = PredictionBatch.of(
        ["a" * 32, "b" * 32], [1e9, 1e9 + span], ["v0001"] * 2, np.zeros((2, 28, 28), np.uint8), np.zeros((2, 10))
    )
    with pytest.raises(ValueError, match="write batches of at most 3600 s each"):
        prediction_log.write_predictions(str(tmp_path), batch)
    assert not (tmp_path / prediction_log.PREDICTIONS).exists()
