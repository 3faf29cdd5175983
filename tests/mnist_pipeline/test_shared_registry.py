"""The registry on an S3 bucket (moto's server on loopback), raced by threads and by separate processes."""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import fsspec
import pytest

from mnist_pipeline.registry import MODEL_FILE, Registry
from mnist_pipeline.shared_store import SharedStoreError


def publish(registry: Registry, content: bytes = b"weights", **metadata) -> str:
    with registry.staging() as folder:
        (folder / MODEL_FILE).write_bytes(content)
        return registry.publish(folder, metadata)


def test_a_version_in_a_bucket_is_fetched_once_and_verified(s3_bucket, artifacts_dir):
    registry = Registry(f"{s3_bucket}/mnist/models")
    assert registry.versions() == [] and registry.champion() is None
    assert [publish(registry, f"model {n}".encode(), run=n) for n in range(2)] == ["v0001", "v0002"]
    assert registry.versions() == ["v0001", "v0002"]
    assert registry.metadata("v0002")["run"] == 1

    local = registry.model_file("v0002")
    assert local.parent == artifacts_dir / "fetched" and local.read_bytes() == b"model 1"
    local.write_bytes(b"damaged")  # a damaged local copy is fetched again
    assert registry.model_file("v0002").read_bytes() == b"model 1"

    fs = fsspec.filesystem("s3")
    fs.pipe_file(f"{s3_bucket}/mnist/models/v0002/{MODEL_FILE}", b"changed in the bucket")
    local.unlink()
    with pytest.raises(SharedStoreError, match="v0002/model.keras is corrupt"):
        registry.model_file("v0002")


def test_concurrent_promotions_and_changes_lose_nothing(s3_bucket):
    registry = Registry(f"{s3_bucket}/models")
    versions = [publish(registry) for _ in range(4)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: Registry(registry.root).promote(versions[n % 4], f"decision {n}"), range(8)))
        list(pool.map(lambda n: Registry(registry.root).update_metadata(versions[0], **{f"note{n}": n}), range(8)))
    records = [json.loads(blob) for blob in fsspec.filesystem("s3").cat(f"{s3_bucket}/models/champion/*").values()]
    assert sorted(record["reason"] for record in records) == [f"decision {n}" for n in range(8)]
    chain = [record["previous_champion"] for record in records[1:]]
    assert chain == [record["version"] for record in records[:-1]]  # each replaced the one before it
    assert registry.champion() == records[-1]["version"]
    assert sum(len(registry.metadata(version)["promotions"]) for version in versions) == 8
    assert {f"note{n}": n for n in range(8)}.items() <= registry.metadata(versions[0]).items()


RACER = """
import json, sys, time
from pathlib import Path
from mnist_pipeline.registry import Registry

url, worker, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
registry = Registry(url)
while not go.exists():  # start together, to race for the same numbers
    time.sleep(0.005)
published = []
for index in range(2):
    with registry.staging() as folder:
        (folder / "model.keras").write_text(f"{worker}-{index}")
        published.append(registry.publish(folder, {"worker": worker, "index": index, "test_metrics": {"accuracy": 0.9 + worker / 100}}))
promoted, reason, champion = registry.judge(published[-1], tolerance=0.0)
print(json.dumps({"published": published, "promoted": promoted, "before": champion}))
"""


def test_processes_publishing_and_judging_at_once_get_distinct_whole_versions_and_one_champion(
    s3_bucket, tmp_path, artifacts_dir
):
    workers = 3
    url = f"{s3_bucket}/models"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, url, str(worker), str(tmp_path / "go")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "MNIST_ARTIFACTS_DIR": str(tmp_path / f"machine-{worker}")},
        )
        for worker in range(workers)
    ]
    (tmp_path / "go").touch()
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0] * workers, [errors for _, errors in outputs]
    results = [json.loads(output) for output, _ in outputs]

    registry = Registry(url)
    expected = [f"v{number:04d}" for number in range(1, 2 * workers + 1)]
    assert sorted(version for result in results for version in result["published"]) == expected
    assert registry.versions() == expected
    for worker, result in enumerate(results):
        for index, version in enumerate(result["published"]):
            assert registry.model_file(version).read_text() == f"{worker}-{index}"  # whole and its own
    judged = [result["published"][-1] for result in results]
    statuses = {version: registry.metadata(version)["status"] for version in judged}
    assert sorted(statuses.values()).count("promoted") >= 1 and set(statuses.values()) <= {"promoted", "rejected"}
    assert registry.champion() == judged[-1]  # the best (worker 2) is the one champion, whatever the order
    assert [row["status"] for row in registry.listing()].count("champion") == 1
