"""Tasks take the registry and the labeled-data store from one provider: the settings' own, or what the caller
hands the run with `stores.using`, which reaches the tasks Prefect runs."""

from prefect import flow

from mnist_pipeline import settings
from mnist_pipeline.datastore import DataStore
from mnist_pipeline.orchestration import stores
from mnist_pipeline.registry import Registry
from mnist_pipeline.tasks.registry import read_champion


def registry_with_a_champion(root) -> Registry:
    registry = Registry(root)
    with registry.staging() as staged:
        (staged / "model.keras").write_bytes(b"not read here")
        version = registry.publish(staged, {"scaling": {"mode": "unit", "mean": 0.0, "std": 1.0}})
    registry.promote(version, "a test champion")
    return registry


@flow
def champion_of_the_run() -> str | None:
    return read_champion()


def test_the_settings_name_the_stores_unless_the_caller_hands_its_own(prefect_server, artifacts_dir, tmp_path):
    assert stores.registry().root == Registry(settings.models_location()).root
    assert stores.data_store().root == DataStore(settings.data_store_location()).root
    assert champion_of_the_run() is None  # the settings' registry is empty

    own_store = DataStore(tmp_path / "data")
    with stores.using(registry=registry_with_a_champion(tmp_path / "models"), data_store=own_store):
        assert champion_of_the_run() == "v0001"
        assert stores.data_store() is own_store
    assert champion_of_the_run() is None and stores.data_store() is not own_store


def test_a_store_left_out_is_the_settings_one(artifacts_dir, tmp_path):
    own_store = DataStore(tmp_path / "data")
    with stores.using(data_store=own_store):
        assert stores.registry().root == Registry(settings.models_location()).root
        assert stores.data_store() is own_store
