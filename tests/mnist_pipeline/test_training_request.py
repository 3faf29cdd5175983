import pytest

from mnist_pipeline.registry import MODEL_FILE, Registry
from mnist_pipeline.tasks.registry import champion_trained_alike
from mnist_pipeline.training_request import TrainingRequest

# A version's parameters as finalize recorded them before the request existed: folders and all.
OLD_RECORD = {
    "model": "deeper",
    "epochs": 10,
    "batch_size": 32,
    "learning_rate": 0.01,
    "scaling": "unit",
    "limit": None,
    "seed": 1,
    "data_dir": "/data/mnist",
    "h5": False,
    "new_data": True,
    "output_dir": "/runs/retrain-1/finalize",
}


class WithDropout(TrainingRequest):
    """A request as it would be once a field is added: recorded versions do not have it yet."""

    dropout: float = 0.5


def test_a_single_model_records_what_it_trained_with_and_no_ensemble_fields():
    request = TrainingRequest(model="baseline", scaling="standardize", limit=500, h5=True, members=3)
    assert request.record() == {
        "model": "baseline",
        "epochs": 10,
        "batch_size": 32,
        "learning_rate": 0.01,
        "scaling": "standardize",
        "limit": 500,
        "seed": 1,
        "h5": True,
        "new_data": False,
    }


def test_an_ensemble_records_its_members_and_their_own_epochs_and_learning_rate():
    record = TrainingRequest(model="ensemble", members=2, epochs=3).record()
    assert record["model"] == "ensemble" and (record["members"], record["member_model"]) == (2, "improved")
    assert (record["epochs"], record["learning_rate"]) == (3, 0.05)  # improved's own rate


@pytest.mark.parametrize(
    "request_", [TrainingRequest(), TrainingRequest(model="ensemble", members=3, new_data=True, learning_rate=0.1)]
)
def test_a_request_is_the_same_as_its_own_record_with_the_folders_of_any_run(request_):
    assert request_.same_as({**request_.record(), "data_dir": "/elsewhere", "output_dir": "/runs/x"})


@pytest.mark.parametrize(
    "change",
    [
        {"model": "baseline"},
        {"epochs": 3},
        {"batch_size": 64},
        {"learning_rate": 0.1},
        {"scaling": "center"},
        {"limit": 1000},
        {"seed": 2},
        {"h5": True},
        {"new_data": False},
    ],
)
def test_every_field_is_compared(change):
    assert set(change) <= set(TrainingRequest.model_fields)
    assert TrainingRequest(new_data=True).same_as(OLD_RECORD)
    assert not TrainingRequest(new_data=True).model_copy(update=change).same_as(OLD_RECORD)


def test_every_field_of_an_ensemble_is_compared():
    ensemble = TrainingRequest(model="ensemble", members=3)
    for change in ({"members": 2}, {"member_model": "deeper"}):
        assert not ensemble.model_copy(update=change).same_as(ensemble.record())


def test_the_epochs_and_rate_left_to_the_model_are_the_ones_it_recorded():
    assert TrainingRequest(new_data=True).same_as(OLD_RECORD)  # epochs None: deeper's 10, as recorded
    assert TrainingRequest(new_data=True, epochs=10, learning_rate=0.01).same_as(OLD_RECORD)


def test_an_ensemble_s_fields_do_not_matter_to_a_single_model():
    assert TrainingRequest(new_data=True, members=3, member_model="deeper").same_as(OLD_RECORD)


def test_a_field_added_since_a_version_was_recorded_compares_at_its_default():
    assert WithDropout(new_data=True).same_as(OLD_RECORD), "an upgrade alone is no change"
    assert not WithDropout(new_data=True, dropout=0.2).same_as(OLD_RECORD)
    assert WithDropout(new_data=True, dropout=0.2).same_as(WithDropout(new_data=True, dropout=0.2).record())


def test_a_record_missing_fields_reads_them_at_their_defaults():
    older = {name: value for name, value in OLD_RECORD.items() if name not in ("h5", "new_data")}
    assert TrainingRequest().same_as(older) and not TrainingRequest(new_data=True).same_as(older)


def test_a_record_this_code_cannot_train_is_a_change():
    assert not TrainingRequest().same_as({**OLD_RECORD, "model": "resnet"})


def test_the_champion_is_trained_alike_only_on_the_same_data_and_the_whole_request(artifacts_dir):
    registry = Registry(artifacts_dir / "models")
    data = {"train_images": "abc", "store_digest": "def"}
    assert champion_trained_alike.fn(TrainingRequest(), data) is None  # no champion yet
    with registry.staging() as staged:
        (staged / MODEL_FILE).write_bytes(b"weights")
        registry.publish(staged, {"parameters": OLD_RECORD, "data": {**data, "dataset": "mnist"}})
    registry.promote("v0001")
    assert champion_trained_alike.fn(TrainingRequest(new_data=True), data) == "v0001"
    assert champion_trained_alike.fn(WithDropout(new_data=True), data) == "v0001"
    assert champion_trained_alike.fn(WithDropout(new_data=True, dropout=0.2), data) is None
    assert champion_trained_alike.fn(TrainingRequest(new_data=True), {**data, "store_digest": "new"}) is None
