import json
import subprocess
import sys

import pytest

from mnist_pipeline.approval import Decision, Review
from mnist_pipeline.gate import Verdict
from mnist_pipeline.registry import MODEL_FILE, Judgement, Registry, RegistryError


def publish(registry: Registry, **metadata) -> str:
    with registry.staging() as folder:
        (folder / MODEL_FILE).write_bytes(b"weights")
        return registry.publish(folder, metadata)


def visible(registry: Registry) -> list[str]:
    return sorted(path.name for path in registry.root.iterdir() if path.name != ".lock")


def test_versions_are_numbered_in_order_and_hold_their_files(tmp_path):
    registry = Registry(tmp_path / "models")
    assert registry.versions() == []
    assert [publish(registry, run=run) for run in range(3)] == ["v0001", "v0002", "v0003"]
    assert registry.versions() == ["v0001", "v0002", "v0003"]
    for run, version in enumerate(registry.versions()):
        assert (registry.path(version) / MODEL_FILE).read_bytes() == b"weights"
        assert registry.metadata(version) == {"run": run, "version": version}
    assert visible(registry) == ["v0001", "v0002", "v0003"]  # no staging folders left behind


def test_versions_sort_by_number_not_by_name(tmp_path):
    registry = Registry(tmp_path)
    for name in ["v0010", "v0002", "v10000", "v0009", ".staging-abc", "notes"]:
        (tmp_path / name).mkdir()
    (tmp_path / "v0011").write_text("a file, not a version")
    assert registry.versions() == ["v0002", "v0009", "v0010", "v10000"]
    assert publish(registry) == "v10001"


def test_a_failure_while_saving_leaves_no_version_and_no_staging_folder(tmp_path):
    registry = Registry(tmp_path / "models")
    publish(registry)
    with pytest.raises(RuntimeError, match="disk full"):
        with registry.staging() as folder:
            (folder / MODEL_FILE).write_bytes(b"half a mod")
            assert registry.versions() == ["v0001"]  # a staged version is invisible
            raise RuntimeError("disk full")
    assert registry.versions() == ["v0001"]
    assert visible(registry) == ["v0001"]
    assert publish(registry) == "v0002"  # and the next version has no gap


PUBLISHER = """
import json, sys, time
from pathlib import Path
from mnist_pipeline.registry import Registry

root, worker, count = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
while not (root.parent / "go").exists():  # start together, to race for the same version numbers
    time.sleep(0.001)
registry = Registry(root)
published = []
for index in range(count):
    with registry.staging() as folder:
        (folder / "model.keras").write_text(f"{worker}-{index}")
        published.append(registry.publish(folder, {"worker": worker, "index": index}))
print(json.dumps(published))
"""


def test_concurrent_publishes_from_processes_get_distinct_gap_free_versions(tmp_path):
    # Separate interpreters rather than multiprocessing: under --import-mode=importlib a spawned child
    # could not import a worker function defined in this module.
    workers, count = 4, 5
    root = tmp_path / "models"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", PUBLISHER, str(root), str(worker), str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in range(workers)
    ]
    (tmp_path / "go").touch()
    outputs = [process.communicate(timeout=60) for process in processes]
    assert [process.returncode for process in processes] == [0] * workers, [errors for _, errors in outputs]

    published = [json.loads(output) for output, _ in outputs]
    expected = [f"v{number:04d}" for number in range(1, workers * count + 1)]
    assert sorted(version for versions in published for version in versions) == expected
    assert all(versions == sorted(versions) for versions in published)
    registry = Registry(root)
    assert registry.versions() == expected
    assert visible(registry) == expected
    for worker, versions in enumerate(published):
        for index, version in enumerate(versions):
            assert registry.metadata(version) == {"worker": worker, "index": index, "version": version}
            assert (registry.path(version) / MODEL_FILE).read_text() == f"{worker}-{index}"


def test_update_metadata_keeps_the_other_fields(tmp_path):
    registry = Registry(tmp_path)
    version = publish(registry, test_metrics={"accuracy": 0.98}, parameters={"epochs": 3})
    updated = registry.update_metadata(version, status="rejected", reason="worse than the champion")
    expected = {
        "test_metrics": {"accuracy": 0.98},
        "parameters": {"epochs": 3},
        "version": version,
        "status": "rejected",
        "reason": "worse than the champion",
    }
    assert updated == expected
    assert registry.metadata(version) == expected
    assert Registry(registry.root).metadata(version) == expected  # as another process reads it
    assert registry.update_metadata(version, reason="retried")["status"] == "rejected"


def test_promote_switches_the_champion_and_statuses_follow(tmp_path):
    registry = Registry(tmp_path)
    first, second, third, fourth = (publish(registry) for _ in range(4))
    assert registry.champion() is None
    registry.promote(first)
    assert registry.champion() == first
    registry.promote(second)
    registry.update_metadata(third, status="rejected")
    assert registry.champion() == second
    assert registry.resolve("champion") == second
    statuses = {row["version"]: row["status"] for row in registry.listing()}
    assert statuses == {first: "archived", second: "champion", third: "rejected", fourth: "challenger"}


def test_promote_of_a_missing_version_raises_and_keeps_the_champion(tmp_path):
    registry = Registry(tmp_path)
    registry.promote(publish(registry))
    with pytest.raises(RegistryError, match="v0042 does not exist"):
        registry.promote("v0042")
    assert registry.champion() == "v0001"


def test_resolve_latest_and_a_version_name(tmp_path):
    registry = Registry(tmp_path)
    publish(registry)
    publish(registry)
    assert registry.resolve("latest") == "v0002"
    assert registry.resolve("v0001") == "v0001"


@pytest.mark.parametrize(
    "spec, published, message",
    [
        ("champion", 1, "no champion model in {root} yet; run `mnist-pipeline retrain` first, or pass a version"),
        ("latest", 0, "no model versions in {root} yet; run `mnist-pipeline finalize` first"),
        ("v0099", 1, "model version v0099 does not exist in {root}; see `mnist-pipeline models`"),
        ("best", 1, "model version must be champion, latest or vNNNN, got 'best'"),
        ("V0001", 1, "model version must be champion, latest or vNNNN, got 'V0001'"),
    ],
)
def test_resolve_errors_name_the_problem_and_the_fix(tmp_path, spec, published, message):
    registry = Registry(tmp_path / "models")
    for _ in range(published):
        publish(registry)
    with pytest.raises(RegistryError) as error:
        registry.resolve(spec)
    assert str(error.value) == message.format(root=registry.root)


def test_listing_rows(tmp_path):
    registry = Registry(tmp_path)
    assert registry.listing() == []
    publish(
        registry,
        created_at="2025-01-02T03:04:05+00:00",
        test_metrics={"accuracy": 0.9871, "loss": 0.04},
        parameters={"model": "deeper", "epochs": 10},
        data={"dataset": "mnist", "train_images": "ab12"},
        model_path="ignored in the listing",
    )
    publish(registry)  # minimal metadata still lists
    registry.promote("v0001")
    assert registry.listing() == [
        {
            "version": "v0001",
            "status": "champion",
            "test_accuracy": 0.9871,
            "created_at": "2025-01-02T03:04:05+00:00",
            "parameters": {"model": "deeper", "epochs": 10},
            "data": {"dataset": "mnist", "train_images": "ab12"},
        },
        {
            "version": "v0002",
            "status": "challenger",
            "test_accuracy": None,
            "created_at": None,
            "parameters": {},
            "data": {},
        },
    ]


def test_judge_promotes_the_first_and_an_equal_version_and_rejects_a_worse_one(tmp_path):
    registry = Registry(tmp_path / "models")
    for accuracy in (0.98, 0.97, 0.9795):
        with registry.staging() as staged:
            registry.publish(staged, {"test_metrics": {"accuracy": accuracy}})
    assert registry.judge("v0001", tolerance=0.001) == (True, "first version: no champion yet", None)
    promoted, reason, champion = registry.judge("v0002", tolerance=0.001)
    assert (promoted, champion) == (False, "v0001") and reason.startswith(
        "test accuracy 97.000% < champion v0001's 98.000%"
    )
    assert registry.metadata("v0002")["rejection_reason"] == reason
    promoted, reason, champion = registry.judge("v0003", tolerance=0.001)
    assert (promoted, champion, registry.champion()) == (True, "v0001", "v0003") and ">=" in reason
    assert [row["status"] for row in registry.listing()] == ["archived", "rejected", "champion"]


def test_an_approval_request_whose_time_ran_out_is_read_as_rejected_with_no_decision(tmp_path):
    registry = Registry(tmp_path / "models")
    champion, expired, waiting = publish(registry), publish(registry), publish(registry)
    registry.promote(champion)
    for version, until in ((expired, "2026-01-02T03:04:05.123456+00:00"), (waiting, "2999-01-01T00:00:00+00:00")):
        registry.update_metadata(
            version, status="awaiting approval", approval_request={"flow_run_id": "a-run", "until": until}
        )
    assert [row["status"] for row in registry.listing()] == ["champion", "rejected", "awaiting approval"]
    metadata = registry.metadata(expired)
    assert metadata["rejection_reason"] == (
        "no decision: nobody approved or rejected it before 2026-01-02T03:04:05 UTC"
    )
    assert metadata["approval"] == {
        "decision": "none",
        "by": "timeout",
        "reason": metadata["rejection_reason"],
        "at": "2026-01-02T03:04:05.123456+00:00",
    }
    assert registry.expire_approval_requests() == []  # recorded once
    assert registry.champion() == champion and registry.metadata(waiting)["status"] == "awaiting approval"


def test_a_registry_made_before_the_promotion_records_keeps_its_champion_until_the_next_promotion(tmp_path):
    registry = Registry(tmp_path)
    first, second = publish(registry), publish(registry)
    (tmp_path / "champion.json").write_text(json.dumps({"version": first}))
    assert registry.champion() == first and registry.resolve("champion") == first
    assert registry.promote(second, "a new champion") == first
    assert registry.champion() == second
    assert registry.metadata(second)["promotions"][0]["previous_champion"] == first


def test_judge_records_a_review_and_a_rejection_overrides_a_passing_gate(tmp_path):
    registry = Registry(tmp_path / "models")
    for _ in range(2):
        with registry.staging() as staged:
            registry.publish(staged, {"test_metrics": {"accuracy": 0.99}})
    approved = registry.judge("v0001", 0.001, review=Review(Decision.APPROVE, "ana", "fine"))
    assert approved == Judgement(True, "first version: no champion yet", None)
    assert registry.metadata("v0001")["approval"] == {"decision": "approve", "by": "ana", "reason": "fine"}
    verdict = registry.verdict("v0002", tolerance=0.001)
    assert verdict == Verdict(True, verdict.reason, "v0001", 0.99, 0.99) and ">= champion v0001's" in verdict.reason
    rejected = registry.judge("v0002", 0.001, review=Review(Decision.REJECT, "ana", "too slow"))
    assert rejected.promoted is False and rejected.reason.startswith("reject by ana: too slow (the gate passed")
    assert registry.metadata("v0002")["status"] == "rejected" and registry.champion() == "v0001"


def test_a_version_never_evaluated_is_not_judged(tmp_path):
    registry = Registry(tmp_path / "models")
    version = publish(registry)
    with pytest.raises(RegistryError, match=f"{version} has no test metrics"):
        registry.judge(version, tolerance=0.001)
    assert registry.champion() is None and "status" not in registry.metadata(version)
