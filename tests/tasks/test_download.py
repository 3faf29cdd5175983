"""download_mnist retries a download that may pass, and fails at once where a retry cannot help."""

import pytest
from prefect import flow

from mnist_pipeline import mnist
from mnist_pipeline.mnist import DownloadFailed, DownloadInterrupted
from mnist_pipeline.tasks.data import download_mnist


@flow
def fetch_mnist():
    return download_mnist.with_options(retry_delay_seconds=0)()


@pytest.mark.parametrize("status, failure, attempts", [(503, DownloadInterrupted, 4), (404, DownloadFailed, 1)])
def test_only_a_download_that_may_pass_is_retried(
    prefect_server, artifacts_dir, server, tmp_path, monkeypatch, status, failure, attempts
):
    url, requests = server
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "downloads"))
    monkeypatch.delenv("MNIST_DATA_DIR", raising=False)
    monkeypatch.setattr(mnist, "KERAS_URL", url.replace("/mnist.npz", f"/status/{status}"))
    with pytest.raises(failure, match=f"MNIST could not be downloaded from {mnist.KERAS_URL} \\(HTTP Error {status}"):
        fetch_mnist()
    assert requests == [f"/status/{status}"] * attempts
