import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mnist_pipeline import settings
from mnist_pipeline.errors import PipelineError


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


def test_runs_started_in_the_same_second_get_their_own_folders(monkeypatch, tmp_path):
    monkeypatch.setenv("MNIST_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    one_second = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
    monkeypatch.setattr(settings, "datetime", type("Clock", (), {"now": staticmethod(lambda tz: one_second)}))
    runs = 8
    start = threading.Barrier(runs)

    def start_a_run(_) -> Path:
        start.wait()
        return settings.run_dir("cross-validate")

    with ThreadPoolExecutor(runs) as pool:
        folders = list(pool.map(start_a_run, range(runs)))
    assert len(set(folders)) == runs
    assert sorted(p.name for p in (tmp_path / "artifacts" / "runs").iterdir()) == sorted(p.name for p in folders)
    assert all(folder.is_dir() and not any(folder.iterdir()) for folder in folders)


def test_an_output_folder_is_created_and_reused(tmp_path):
    output = tmp_path / "results" / "cv"
    assert settings.run_dir("cross-validate", output) == output and output.is_dir()
    (output / "kept.txt").write_text("earlier")
    assert settings.run_dir("cross-validate", output) == output
    assert (output / "kept.txt").read_text() == "earlier"


@pytest.mark.parametrize(
    "output, artifacts, message",
    [
        (
            "/proc/nope",
            None,
            "output_dir /proc/nope: cannot create the folder (No such file or directory); pass a writable folder",
        ),
        (
            None,
            "/proc/nope",
            "MNIST_ARTIFACTS_DIR /proc/nope: cannot create a run folder in it (No such file or directory); "
            "set it to a writable folder",
        ),
    ],
)
def test_a_run_folder_that_cannot_be_made_names_its_setting(monkeypatch, output, artifacts, message):
    if artifacts:
        monkeypatch.setenv("MNIST_ARTIFACTS_DIR", artifacts)
    with pytest.raises(PipelineError) as error:
        settings.run_dir("cross-validate", output)
    assert str(error.value) == message
