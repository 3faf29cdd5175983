"""The model registry and the labeled-data store that a run's tasks use, provided in one place: the ones the shared
store's settings name (MNIST_ARTIFACTS_DIR or MNIST_ARTIFACTS_URL), unless the caller hands the run its own with
`using`, as a test or a program embedding the flows does."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from mnist_pipeline import settings
from mnist_pipeline.datastore import DataStore
from mnist_pipeline.registry import Registry, default_registry

_registry: ContextVar[Registry | None] = ContextVar("mnist_registry", default=None)
_data_store: ContextVar[DataStore | None] = ContextVar("mnist_data_store", default=None)


def registry() -> Registry:
    return _registry.get() or default_registry()


def data_store() -> DataStore:
    return _data_store.get() or DataStore(settings.data_store_location())


@contextmanager
def using(registry: Registry | None = None, data_store: DataStore | None = None) -> Iterator[None]:
    """Within this block (and the tasks it runs, which copy its context), `registry()` and `data_store()` are these."""
    tokens = [(variable, variable.set(value)) for variable, value in ((_registry, registry), (_data_store, data_store))]
    try:
        yield
    finally:
        for variable, token in reversed(tokens):
            variable.reset(token)
