"""`promote`, `models`, `data`, `add-data` and `serve`'s checks through the CLI's main()."""

import getpass
import json

from PIL import Image

from mnist_pipeline.datastore import DataStore
from mnist_pipeline.flows.cli import main
from mnist_pipeline.mnist import read_directory
from mnist_pipeline.registry import MODEL_FILE, Registry
from mnist_pipeline.tasks.registry import request_approval
from tests.serving.conftest import SUBSET, labeled_folder


def publish(registry: Registry) -> str:
    with registry.staging() as staged:
        (staged / MODEL_FILE).write_bytes(b"weights")
        return registry.publish(staged, {"parameters": {"model": "baseline"}})


def test_promote_and_roll_back_record_who_why_and_when(capsys, artifacts_dir):
    registry = Registry(artifacts_dir / "models")
    first, second = publish(registry), publish(registry)
    assert main(["promote", first, "--reason", "first release"]) == 0
    assert main(["promote", "latest", "--reason", "better on the new scans"]) == 0
    assert main(["promote", first, "--reason", "rollback: v0002 misreads sevens"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"{first} is the champion (before: {second}): rollback: v0002 misreads sevens"
    )
    assert registry.champion() == first
    promotions = registry.metadata(first)["promotions"]
    assert [(p["reason"], p["previous_champion"]) for p in promotions] == [
        ("first release", None),
        ("rollback: v0002 misreads sevens", second),
    ]
    assert all(p["by"].startswith(getpass.getuser() + "@") and p["at"] for p in promotions)
    assert registry.metadata(second)["promotions"][0]["reason"] == "better on the new scans"


def test_models_shows_a_request_nobody_decided_in_time_as_rejected_with_no_decision(capsys, artifacts_dir):
    registry = Registry(artifacts_dir / "models")
    expired, waiting = publish(registry), publish(registry)
    request_approval.fn(expired, "a-suspended-run", timeout_seconds=-60)  # as retrain writes it; a minute ago
    request_approval.fn(waiting, "another-run", timeout_seconds=3600)
    assert main(["models"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in table[1:]] == [[expired, "rejected"], [waiting, "awaiting"]]
    assert table[2].split()[2] == "approval"
    approval = registry.metadata(expired)["approval"]
    assert (approval["decision"], approval["by"]) == ("none", "timeout")
    assert approval["reason"].startswith("no decision: nobody approved or rejected it before ")


def test_promote_of_a_missing_version_fails_in_one_line_and_keeps_the_champion(capsys, artifacts_dir):
    registry = Registry(artifacts_dir / "models")
    registry.promote(publish(registry))
    assert main(["promote", "v0042", "--reason", "typo"]) == 1
    error = capsys.readouterr().err
    assert error.splitlines() == [error.strip()] and "v0042 does not exist" in error
    assert registry.champion() == "v0001"


def test_add_data_imports_the_good_rows_reports_each_bad_one_and_fails(capsys, artifacts_dir, tmp_path):
    folder = labeled_folder(tmp_path / "scans", ["0.png,7", "1.png,2", "missing.png,3", "2.png,x"])
    assert main(["add-data", str(folder)]) == 1
    output = capsys.readouterr()
    assert output.err.splitlines() == [
        "mnist-pipeline add-data: error: labels.csv line 4 (missing.png): no such file",
        "mnist-pipeline add-data: error: labels.csv line 5 (2.png): label must be one digit from 0 to 9, got 'x'",
    ]
    assert "2 added, 0 already stored, 0 conflicting with a stored label, 2 failed" in output.out
    assert main(["data", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["examples"], summary["by_label"], summary["by_source"]) == (
        2,
        {"2": 1, "7": 1},
        {"import:scans": 2},
    )
    good = labeled_folder(tmp_path / "more", ["0.png,7", "3.png,0"])
    assert main(["add-data", str(good)]) == 0
    assert "1 added, 1 already stored" in capsys.readouterr().out
    assert main(["data"]) == 0
    assert capsys.readouterr().out.startswith("3 examples in ")
    assert main(["add-data", str(tmp_path / "nowhere")]) == 1
    assert "has no labels.csv" in capsys.readouterr().err


def test_serve_refuses_bad_options_before_starting(capsys, artifacts_dir):
    assert main(["serve", "--host", "0.0.0.0"]) == 1
    assert "pass --feedback-token TOKEN (or set MNIST_FEEDBACK_TOKEN), or --open-feedback" in capsys.readouterr().err
    assert main(["serve", "--max-body-mb", "0"]) == 1
    assert "--max-body-mb must be positive" in capsys.readouterr().err
    assert main(["serve", "--model-version", "v0007"]) == 1
    assert "v0007 does not exist" in capsys.readouterr().err


def test_add_data_refuses_a_copy_of_an_mnist_test_image_and_keeps_the_other_rows(capsys, artifacts_dir, tmp_path):
    folder = labeled_folder(tmp_path / "scans", ["0.png,7", "copy.png,2"])
    Image.fromarray(read_directory(SUBSET).test_images[1]).save(folder / "copy.png")
    assert main(["add-data", str(folder)]) == 1
    output = capsys.readouterr()
    assert output.err.splitlines() == [
        "mnist-pipeline add-data: error: labels.csv line 3 (copy.png): a copy of an MNIST test image: "
        "storing it would leak the test set into training"
    ]
    assert "1 added" in output.out and DataStore(artifacts_dir / "data").count() == 1
