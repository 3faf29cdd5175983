import os
from pathlib import Path

import pytest

SUBSET_DIR = Path(__file__).parent / "data" / "mnist-first-1000"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """Full MNIST from $MNIST_DATA_DIR when it is set, else the real subset shipped with the tests."""
    return Path(os.environ["MNIST_DATA_DIR"]) if os.environ.get("MNIST_DATA_DIR") else SUBSET_DIR


@pytest.fixture(scope="session")
def prefect_server():
    """One temporary Prefect server (SQLite, temporary PREFECT_HOME) shared by the session's tests."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture
def artifacts_dir(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "artifacts"
    monkeypatch.setenv("MNIST_ARTIFACTS_DIR", str(path))
    return path
