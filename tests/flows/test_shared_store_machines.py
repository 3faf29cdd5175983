"""Two "machines" sharing only an S3 bucket (moto's server on loopback) and a Prefect server: processes with
their own HOME, PREFECT_HOME and local artifacts folder, and MNIST_ARTIFACTS_URL on the bucket."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL

from mnist_pipeline.registry import Registry
from tests.flows.test_cross_validate_dask import DaskCluster

pytestmark = pytest.mark.e2e
CLI = [sys.executable, "-m", "mnist_pipeline.flows.cli"]


def machine(tmp_path: Path, name: str, bucket: str) -> dict[str, str]:
    """The environment of a machine: its own home and local folders; the bucket and the Prefect server shared."""
    home = tmp_path / name
    home.mkdir()
    environment = {
        **os.environ,
        "HOME": str(home),
        "PREFECT_HOME": str(home / ".prefect"),
        "MNIST_ARTIFACTS_DIR": str(home / "artifacts"),
        "MNIST_ARTIFACTS_URL": f"{bucket}/mnist",
        "PREFECT_API_URL": PREFECT_API_URL.value(),
    }
    environment.pop("PREFECT_LOCAL_STORAGE_PATH", None)  # each machine's own result folder stays its own
    return environment


def test_a_fold_finished_on_one_machine_is_cached_on_the_other(prefect_server, s3_bucket, mnist_dir, tmp_path):
    a, b = machine(tmp_path, "a", s3_bucket), machine(tmp_path, "b", s3_bucket)
    cluster = DaskCluster(tmp_path)
    cluster.start_scheduler()
    try:
        [(worker_a, log_a)] = cluster.live_workers(1, a)
        command = [*CLI, "cv", "--runner", "dask", "--dask-address", cluster.address, "--folds", "2"]
        command += ["--epochs", "1", "--limit", "300", "--data-dir", str(mnist_dir)]
        killed = subprocess.Popen(
            [*command, "--output", str(tmp_path / "killed")],
            env=a,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline, finished = time.monotonic() + 240, None
        while finished is None and time.monotonic() < deadline and killed.poll() is None:
            finished = re.search(r"train-fold-(\d)' - Finished in state Completed", log_a.read_text())
            time.sleep(0.05)
        os.killpg(killed.pid, signal.SIGKILL)
        worker_a.send_signal(signal.SIGKILL)
        killed.wait(timeout=60)
        worker_a.wait(timeout=60)
        assert finished, log_a.read_text()[-3000:]
        fold = int(finished[1])

        [(worker_b, log_b)] = cluster.live_workers(1, b)
        rerun = subprocess.run(
            [*command, "--output", str(tmp_path / "rerun")], env=b, capture_output=True, text=True, timeout=300
        )
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        log = log_b.read_text()
        assert f"train-fold-{fold}' - Finished in state Cached" in log, log[-3000:]
        assert f"train-fold-{3 - fold}' - Finished in state Completed" in log
        metrics = json.loads((tmp_path / "rerun" / "metrics.json").read_text())
        trained_by = {entry["fold"]: int(entry["worker"].rsplit(":", 1)[1]) for entry in metrics["folds"]}
        assert trained_by == {fold: worker_a.pid, 3 - fold: worker_b.pid}
        assert list((tmp_path / "a" / "artifacts" / "fetched").iterdir())  # arrays came from the bucket
    finally:
        cluster.stop()


def test_two_machines_retraining_at_once_get_two_whole_versions_and_one_champion(
    prefect_server, s3_bucket, mnist_dir, tmp_path
):
    command = [*CLI, "retrain", "--model", "baseline", "--epochs", "1", "--limit", "300", "--min-accuracy", "0"]
    command += ["--force", "--data-dir", str(mnist_dir)]
    runs = [
        subprocess.Popen(
            [*command, "--output", str(tmp_path / f"retrain-{name}")],
            env=machine(tmp_path, name, s3_bucket),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in "ab"
    ]
    outputs = [run.communicate(timeout=400) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [errors[-3000:] for _, errors in outputs]

    registry = Registry(f"{s3_bucket}/mnist/models")
    assert registry.versions() == ["v0001", "v0002"]
    promotions = [json.loads((tmp_path / f"retrain-{name}" / "promotion.json").read_text()) for name in "ab"]
    assert sorted(promotion["version"] for promotion in promotions) == ["v0001", "v0002"]
    for promotion in promotions:
        metadata = registry.metadata(promotion["version"])
        assert registry.model_file(promotion["version"]).stat().st_size > 0  # whole: it matches its digest
        assert metadata["test_metrics"]["accuracy"] > 0 and metadata["parameters"]["model"] == "baseline"
        assert metadata["status"] == ("promoted" if promotion["promoted"] else "rejected")  # both decisions kept
    first, second = sorted(promotions, key=lambda promotion: promotion["previous_champion"] is not None)
    assert first["promoted"] and first["previous_champion"] is None  # the first judged replaced nobody
    assert second["previous_champion"] == first["version"]  # the second was judged against the first
    champion = second["version"] if second["promoted"] else first["version"]
    statuses = {row["version"]: row["status"] for row in registry.listing()}
    assert list(statuses.values()).count("champion") == 1 and statuses[champion] == "champion"
