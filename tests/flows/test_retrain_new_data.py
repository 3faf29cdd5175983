import json

import numpy as np
import pytest
from prefect.settings import PREFECT_API_URL

from mnist_pipeline.data_checks import DataRejected, is_held_out
from mnist_pipeline.datastore import DataStore, image_sha256
from mnist_pipeline.flows.retrain import retrain
from mnist_pipeline.mnist import read_directory
from mnist_pipeline.orchestration.approval import NoDecision
from mnist_pipeline.orchestration.temporary_server import STARTED_HERE
from mnist_pipeline.registry import Registry
from mnist_pipeline.tasks.new_data import client_share_finding, read_store_examples

QUICK = {"model": "baseline", "limit": 300, "epochs": 1, "min_accuracy": 0}


def store_examples(artifacts_dir, images, labels) -> DataStore:
    store = DataStore(artifacts_dir / "data")
    for image, label in zip(images, labels, strict=True):
        store.add(image, int(label), "import:test")  # the operator's own: no client share applies
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

    store.add(mnist.train_images[-61], int(mnist.train_labels[-61]), "import:test")  # one new example: train again
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


def test_without_a_server_a_challenger_is_rejected_when_the_users_digits_significantly_disagree_with_mnist(
    prefect_server, artifacts_dir, mnist_dir, tmp_path, monkeypatch
):
    first = retrain(**QUICK, data_dir=str(mnist_dir), output_dir=str(tmp_path / "first"))  # no user data: v0001
    assert first.promoted and first.users_digits is None
    mnist = read_directory(mnist_dir)
    store_examples(artifacts_dir, mnist.train_images[-60:], mnist.train_labels[-60:])
    registry = Registry(artifacts_dir / "models")

    def users_rate_opposite_to_mnist(version: str, _users) -> float:
        challenger, champion = registry.versions()[-1], registry.champion()
        mnist_prefers_challenger = registry.test_accuracy(challenger) >= registry.test_accuracy(champion)
        return 1.0 if version == (champion if mnist_prefers_challenger else challenger) else 0.5

    monkeypatch.setattr("mnist_pipeline.flows.retrain.users_accuracy", users_rate_opposite_to_mnist)
    monkeypatch.setenv(STARTED_HERE, PREFECT_API_URL.value())  # the command line's own server: nobody to ask
    second = retrain(**QUICK, tolerance=1, data_dir=str(mnist_dir), output_dir=str(tmp_path / "second"))
    assert (second.version, second.promoted, registry.champion()) == ("v0002", False, "v0001")
    assert second.reason.startswith("reject by the users' digits rule: MNIST's test set rates the")
    assert "significantly better (" in second.reason and "set PREFECT_API_URL" in second.reason
    assert registry.metadata("v0002")["status"] == "rejected"


def test_a_dominant_clients_excess_is_left_out_of_training_and_the_validation_says_so(artifacts_dir, mnist_dir):
    mnist = read_directory(mnist_dir)
    store = DataStore(artifacts_dir / "data")
    # digits of the training share only (their digest decides the share), so that the counts below hold for any data
    share = [index for index, image in enumerate(mnist.train_images) if not is_held_out(image_sha256(image))]
    for order, index in enumerate(share[-60:]):  # one client floods; two send a few each, and the operator imports some
        client = "10.0.0.66" if order < 40 else "10.0.0.1" if order < 45 else "10.0.0.2" if order < 50 else None
        store.add(
            mnist.train_images[index], int(mnist.train_labels[index]), "feedback" if client else "import:x", client
        )
    examples = read_store_examples.fn()
    train = examples.clients["train"]
    assert train.sent["10.0.0.66"] > train.cap == train.sent["10.0.0.66"] - train.left_out["10.0.0.66"]
    assert list(train.left_out) == ["10.0.0.66"] and examples.train.labels.shape[0] == sum(train.sent.values()) + (
        train.imported - train.left_out["10.0.0.66"]
    )
    finding = client_share_finding(examples.clients)
    assert not finding.passed and not finding.blocking
    assert f"train: 10.0.0.66 sent {train.sent['10.0.0.66']}, {train.left_out['10.0.0.66']} left out" in finding.detail
