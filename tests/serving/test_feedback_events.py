"""The service sends `mnist.data.arrived` after every `data_event_every` new corrections."""

from fastapi.testclient import TestClient

from mnist_pipeline import settings
from mnist_pipeline.datastore import DataStore
from mnist_pipeline.orchestration import events
from mnist_pipeline.registry import Registry
from mnist_pipeline.serving.app import create_app
from mnist_pipeline.serving.model_slot import ModelSlot
from tests.serving.conftest import encoded


def test_every_second_new_correction_sends_the_event_and_a_duplicate_does_not_count(tmp_path, monkeypatch, subset):
    monkeypatch.setenv("MNIST_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    sent = []
    monkeypatch.setattr(
        events, "emit_data_arrived", lambda summary, added, source: sent.append((summary["examples"], added, source))
    )
    slot = ModelSlot(Registry(tmp_path / "artifacts" / "models"), poll_seconds=3600)
    with TestClient(create_app(slot, DataStore(settings.data_store_location()), data_event_every=2)) as client:
        for index in (0, 1, 1, 2, 3, 4):  # the second 1 is stored already: no new correction
            digit = encoded(subset.train_images[index], "PNG")
            response = client.post(f"/feedback?label={subset.train_labels[index]}", content=digit)
            assert response.status_code == 200, response.text
    assert sent == [(2, 2, "feedback"), (4, 2, "feedback")]
