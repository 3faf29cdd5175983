from pathlib import Path

import pytest

from mnist_pipeline import settings


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, "{artifacts}/cache"),
        ("", "{artifacts}/cache"),
        ("{tmp}/shared-cache", "{tmp}/shared-cache"),
        ("file://{tmp}/shared-cache", "{tmp}/shared-cache"),
        ("s3://bucket/mnist-cache/", "s3://bucket/mnist-cache"),
        ("gcs://bucket/cache", "gcs://bucket/cache"),
    ],
)
def test_cache_url_is_a_local_absolute_path_or_a_remote_url(monkeypatch, tmp_path, value, expected):
    monkeypatch.setenv("MNIST_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    if value is None:
        monkeypatch.delenv("MNIST_CACHE_URL", raising=False)
    else:
        monkeypatch.setenv("MNIST_CACHE_URL", value.format(tmp=tmp_path))
    url = settings.cache_url()
    assert url == expected.format(tmp=tmp_path, artifacts=tmp_path / "artifacts")
    assert settings.is_remote(url) == url.startswith(("s3://", "gcs://"))


def test_a_relative_cache_path_is_made_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MNIST_CACHE_URL", "relative/cache")
    assert settings.cache_url() == str(Path(tmp_path, "relative", "cache").resolve())
