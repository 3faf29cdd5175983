import json
import re

import keras
import numpy as np
import pytest
from prefect import get_client
from prefect.client.schemas.filters import LogFilter
from prefect.logging.handlers import APILogWorker

from mnist_pipeline.arrays import array_sha256
from mnist_pipeline.flows.finalize import finalize
from mnist_pipeline.mnist import read_directory
from mnist_pipeline.registry import Registry


def test_finalize_registers_a_version_with_what_evaluate_and_predict_need(
    prefect_server, artifacts_dir, mnist_dir, tmp_path
):
    output = tmp_path / "out"
    state = finalize(
        model="baseline",
        epochs=2,
        limit=500,
        scaling="standardize",
        data_dir=str(mnist_dir),
        h5=True,
        output_dir=str(output),
        return_state=True,
    )
    summary = state.result()
    version_dir = artifacts_dir / "models" / "v0001"
    assert summary.version == "v0001" and summary.model_path == str(version_dir / "model.keras")

    model = keras.saving.load_model(version_dir / "model.keras")
    assert model.name == "baseline" and model.input_shape == (None, 28, 28, 1)
    h5 = keras.saving.load_model(version_dir / "final_model.h5", compile=False)
    sample = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(h5.predict(sample, verbose=0), model.predict(sample, verbose=0), rtol=1e-5, atol=1e-6)

    metadata = json.loads((version_dir / "metadata.json").read_text())
    assert metadata["version"] == "v0001" and metadata["status"] == "challenger"
    assert metadata["parameters"]["model"] == "baseline" and metadata["parameters"]["epochs"] == 2
    raw = read_directory(mnist_dir)
    assert metadata["data"]["train_images"] == array_sha256(raw.train_images)
    assert metadata["data"]["train_labels"] == array_sha256(raw.train_labels)
    assert (
        metadata["scaling"]["mode"] == "standardize"
        and 0 < metadata["scaling"]["mean"] < 1
        and metadata["scaling"]["std"] > 0
    )
    assert re.fullmatch(r"[0-9a-f]{40}", metadata["code_version"])
    assert len(metadata["history"]["loss"]) == 2 and metadata["training_seconds"] > 0 and metadata["created_at"]

    assert (output / "learning_curves.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads((output / "finalize.json").read_text())["version"] == "v0001"
    assert (output / "model.keras").read_bytes() == (version_dir / "model.keras").read_bytes()

    with get_client(sync_client=True) as client:
        artifacts = {
            a.key: a for a in client.read_artifacts() if a.flow_run_id == state.state_details.flow_run_id and a.key
        }
    progress = artifacts["training-progress-final"]
    assert progress.type == "progress" and progress.data == 100.0 and "epoch 2/2" in progress.description
    [row] = json.loads(artifacts["model-registry"].data)
    assert row["version"] == "v0001" and row["status"] == "challenger" and row["model"] == "baseline"

    APILogWorker.drain_all(timeout=10)
    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id={"any_": [state.state_details.flow_run_id]}))
    epochs = [log.message for log in logs if re.fullmatch(r"baseline epoch \d/2: .*loss=\d+\.\d{4}.*", log.message)]
    assert len(epochs) == 2, "per-epoch progress goes to the run logs"


def test_without_h5_only_the_keras_file_is_saved(prefect_server, artifacts_dir, mnist_dir, tmp_path):
    first = finalize(model="baseline", epochs=1, limit=200, data_dir=str(mnist_dir), output_dir=str(tmp_path / "1"))
    second = finalize(model="baseline", epochs=1, limit=200, data_dir=str(mnist_dir), output_dir=str(tmp_path / "2"))
    assert (first.version, second.version) == ("v0001", "v0002")
    assert sorted(p.name for p in (artifacts_dir / "models" / "v0002").iterdir()) == [
        "metadata.json",
        "model.keras",
        "reference.npz",
    ]


def test_a_failure_while_saving_leaves_no_version(prefect_server, artifacts_dir, mnist_dir, tmp_path, monkeypatch):
    def fail_halfway(self, path, *args, **kwargs):
        open(path, "wb").write(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(keras.Model, "save", fail_halfway)
    with pytest.raises(OSError, match="No space left"):
        finalize(model="baseline", epochs=1, limit=200, data_dir=str(mnist_dir), output_dir=str(tmp_path / "out"))
    assert Registry(artifacts_dir / "models").versions() == []
    assert list((tmp_path / "out").glob("*.keras")) == [], "no half-saved model is left in the run's folder"
