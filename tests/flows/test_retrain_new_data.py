import json

import numpy as np
import pytest

from mnist_pipeline.data_checks import DataRejected, is_held_out
from mnist_pipeline.datastore import DataStore, image_sha256
from mnist_pipeline.flows.retrain import retrain
from mnist_pipeline.mnist import read_directory
from mnist_pipeline.registry import Registry
from mnist_pipeline.tasks.approval import NoDecision

QUICK = {"model": "baseline", "limit": 300, "epochs": 1, "min_accuracy": 0}


def store_examples(artifacts_dir, images, labels) -> DataStore:
    store = DataStore(artifacts_dir / "data")
    for image, label in zip(images, labels, strict=True):
        store.add(image, int(label), "test")
    return store


def test_a_retrain_learns_from_the_store_then_finds_nothing_new_and_an_unanswered_approval_rejects_the_next(
    prefect_server, artifacts_dir, mnist_dir, tmp_path
):
    mnist = read_directory(mnist_dir)
    images, labels = mnist.train_images[-60:], mnist.train_labels[-60:]  # outside the 300-image subset
    store = store_examples(artifacts_dir, images, labels)
    held_out = sum(is_held_out(image_sha256(image)) for image in images)
    assert 0 < held_out < 60

    first = retrain(**QUICK, data_dir=str(mnist_dir), output_dir=str(tmp_path / "first"))
    assert (first.version, first.promoted) == ("v0001", True)
    assert first.users_digits["examples"] == held_out and 0 <= first.users_digits["challenger"] <= 1
    data = Registry(artifacts_dir / "models").metadata("v0001")["data"]
    assert data["store_digest"] == store.summary()["digest"]
    assert data["new_examples"] == 60 - held_out and data["held_out_examples"] == held_out
    assert sum(data["new_examples_by_label"].values()) == 60 - held_out
    assert (tmp_path / "first" / "finalize" / "data_validation.json").is_file()

    state = retrain(**QUICK, data_dir=str(mnist_dir), output_dir=str(tmp_path / "again"), return_state=True)
    again = state.result()
    assert again.version is None and again.reason.startswith("no new data since v0001")
    assert Registry(artifacts_dir / "models").versions() == ["v0001"]

    store.add(mnist.train_images[-61], int(mnist.train_labels[-61]), "test")  # one new example: train again
    held_out += is_held_out(image_sha256(mnist.train_images[-61]))  # by its digest, it may join the users' digits
    with pytest.raises(NoDecision, match="v0002 rejected: no decision: nobody approved or rejected it before"):
        retrain(  # not a deployment's run: it pauses in place for a person, who does not come in 3 seconds
            **QUICK,
            tolerance=1,  # it passes the gate, so a person is asked
            approval="always",
            approval_timeout_hours=0.001,
            data_dir=str(mnist_dir),
            output_dir=str(tmp_path / "third"),
        )
    registry = Registry(artifacts_dir / "models")
    metadata = registry.metadata("v0002")
    assert metadata["status"] == "rejected" and metadata["rejection_reason"].startswith("none by timeout: no decision")
    assert (metadata["approval"]["by"], registry.champion()) == ("timeout", "v0001")
    third = json.loads((tmp_path / "third" / "promotion.json").read_text())
    assert third["users_digits"]["examples"] == held_out and third["users_digits"]["champion"] is not None


@pytest.mark.parametrize("bad", ["test copies", "one digit"])
def test_a_bad_batch_blocks_the_run_with_its_reasons_and_nothing_trains(
    prefect_server, artifacts_dir, mnist_dir, tmp_path, bad
):
    mnist = read_directory(mnist_dir)
    if bad == "test copies":
        store_examples(artifacts_dir, mnist.test_images[:3], mnist.test_labels[:3])
        expected = "MNIST test images: 3 copies of MNIST test images"
    else:
        ones = np.flatnonzero(mnist.train_labels == 1)[-22:]
        store_examples(artifacts_dir, mnist.train_images[ones], mnist.train_labels[ones])
        expected = "label mix: 100% of the examples are 1s"
    with pytest.raises(DataRejected, match=expected):
        retrain(**QUICK, data_dir=str(mnist_dir), output_dir=str(tmp_path / "run"))
    assert Registry(artifacts_dir / "models").versions() == []
    assert not (tmp_path / "run" / "finalize" / "model.keras").exists()
    assert expected in (tmp_path / "run" / "finalize" / "data_validation.json").read_text()


def test_the_accuracy_floor_rejects_a_first_version(prefect_server, artifacts_dir, mnist_dir, tmp_path):
    promotion = retrain(**{**QUICK, "min_accuracy": 0.999}, data_dir=str(mnist_dir), output_dir=str(tmp_path / "run"))
    assert (
        promotion.version == "v0001"
        and not promotion.promoted
        and "< the floor min_accuracy 99.900%" in promotion.reason
    )
    assert Registry(artifacts_dir / "models").champion() is None
