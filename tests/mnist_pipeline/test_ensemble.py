import json
import zipfile

import numpy as np
import pytest

from mnist_pipeline.ensemble import average_models, mean_history, members_of
from mnist_pipeline.models import build_model, load_checked_model


def test_an_ensemble_saves_as_one_file_that_safe_mode_loads_and_averages_its_members(tmp_path):
    members = [build_model("baseline"), build_model("improved"), build_model("baseline")]
    ensemble = average_models(members)
    ensemble.save(tmp_path / "model.keras")

    with zipfile.ZipFile(tmp_path / "model.keras") as archive:
        config = archive.read("config.json").decode()
    assert "Lambda" not in config and json.loads(config)["class_name"] == "Functional"
    loaded = load_checked_model(tmp_path / "model.keras")
    assert [member.name for member in members_of(loaded)] == ["member_1", "member_2", "member_3"]
    images = np.random.default_rng(0).random((5, 28, 28, 1), dtype=np.float32)
    expected = np.mean([member.predict(images, verbose=0) for member in members], axis=0)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), expected, atol=1e-6)
    np.testing.assert_allclose(loaded.predict(images, verbose=0).sum(axis=1), 1, atol=1e-5)


def test_the_members_histories_are_averaged_epoch_by_epoch():
    histories = [{"loss": [1.0, 0.5], "accuracy": [0.2, 0.6]}, {"loss": [3.0, 1.5], "accuracy": [0.4, 0.8]}]
    assert mean_history(histories) == {"loss": [2.0, 1.0], "accuracy": pytest.approx([0.3, 0.7])}
