import inspect
import json
import os
import re
import subprocess
import sys

import pytest

from mnist_pipeline.flows.cli import FLOWS, load_flow, main, option_name
from mnist_pipeline.registry import Registry


def cli(*arguments, tmp_path, timeout=240):
    """Run `mnist-pipeline` in a fresh process with its own Prefect home and temporary server."""
    environment = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "MNIST_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
    }
    environment.pop("PREFECT_API_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "mnist_pipeline.flows.cli", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--folds", "1"], "invalid --folds '1': Input should be greater than or equal to 2"),
        (["--folds", "five"], "invalid --folds 'five': Input should be a valid integer"),
        (
            ["--model", "resnet"],
            "invalid --model 'resnet': Input should be 'baseline', 'batchnorm', 'deeper' or 'improved'",
        ),
        (["--learning-rate", "fast"], "invalid --learning-rate 'fast': Input should be a valid number"),
        (["--limit", "5"], "invalid --limit '5': Input should be greater than or equal to 10"),
        (["--runner", "gpu"], "invalid --runner 'gpu'"),
        (
            ["--runner", "dask", "--dask-address", "scheduler"],
            "invalid --dask-address 'scheduler': String should match pattern",
        ),
    ],
)
def test_bad_values_are_reported_in_one_line_before_anything_runs(arguments, message, capsys, artifacts_dir):
    assert main(["cv", *arguments]) == 2
    error = capsys.readouterr().err
    assert error.splitlines() == [error.strip()] and message in error
    assert not artifacts_dir.exists()


def test_bad_value_in_a_fresh_process_prints_no_traceback(tmp_path):
    result = cli("cv", "--epochs", "0", tmp_path=tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "mnist-pipeline cv: error: invalid --epochs '0': Input should be greater than or equal to 1"
    )


def test_cv_from_the_command_line_prints_the_study_lines_and_where_results_are(tmp_path, mnist_dir):
    output = tmp_path / "results"
    result = cli(
        "cv",
        "--folds",
        "2",
        "--epochs",
        "1",
        "--limit",
        "600",
        "--data-dir",
        str(mnist_dir),
        "--output",
        str(output),
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert [bool(re.fullmatch(r"> \d+\.\d{3}", line)) for line in lines[:2]] == [True, True]
    assert re.fullmatch(r"Accuracy: mean=\d+\.\d{3} std=\d+\.\d{3}, n=2", lines[2])
    assert lines[3] == f"Results: {output}"
    metrics = json.loads((output / "metrics.json").read_text())
    assert [f"> {100 * fold['accuracy']:.3f}" for fold in metrics["folds"]] == lines[:2]


def test_missing_data_directory_fails_in_one_line_without_traceback(tmp_path):
    missing = tmp_path / "no-such-dir"
    result = cli("cv", "--folds", "2", "--epochs", "1", "--data-dir", str(missing), tmp_path=tmp_path)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("mnist-pipeline cv: error:")]
    assert errors == [
        f"mnist-pipeline cv: error: MNIST directory {missing} does not exist; set MNIST_DATA_DIR to a folder with the MNIST files"
    ]
    # Prefect's temporary SQLite server may log tracebacks of its own ("database is locked"); ours must not.
    assert not re.search(r'File ".*mnist_pipeline/', result.stderr), result.stderr


@pytest.mark.parametrize(
    "arguments, message",
    [
        (
            ["compare", "--models", "baseline,resnet"],
            "invalid --models 'resnet': Input should be 'baseline', 'batchnorm', 'deeper' or 'improved'",
        ),
        (["compare", "--learning-rates", "0.01,-1"], "invalid --learning-rates '-1': Input should be greater than 0"),
        (["evaluate", "--model-version", "best"], "invalid --model-version 'best': String should match pattern"),
        (["retrain", "--tolerance", "2"], "invalid --tolerance '2': Input should be less than or equal to 1"),
        (["finalize", "--scaling", "max"], "invalid --scaling 'max'"),
        (["predict", "a.png", "--model-version", "v1"], "invalid --model-version 'v1'"),
    ],
)
def test_every_subcommand_validates_its_options(arguments, message, capsys, artifacts_dir):
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert error.splitlines() == [error.strip()] and message in error
    assert not artifacts_dir.exists()


def test_models_lists_the_registry(capsys, artifacts_dir):
    registry = Registry(artifacts_dir / "models")
    for status in ("promoted", "rejected"):
        with registry.staging() as staged:
            registry.publish(
                staged, {"parameters": {"model": "baseline"}, "created_at": "2026-11-24T00:00:00", "status": status}
            )
    registry.update_metadata("v0002", test_metrics={"accuracy": 0.9})
    registry.promote("v0001")
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(row["version"], row["status"], row["test_accuracy"]) for row in rows] == [
        ("v0001", "champion", None),
        ("v0002", "rejected", 0.9),
    ]
    assert set(rows[0]) == {"version", "status", "test_accuracy", "created_at", "parameters", "data"}
    assert main(["models"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split()[:2] == ["v0001", "champion"] and table[2].split()[:3] == ["v0002", "rejected", "90.000"]


@pytest.mark.parametrize("command", sorted(FLOWS))
def test_help_lists_every_parameter_as_its_kind_of_option(command, capsys):
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    usage = " ".join(capsys.readouterr().out.split())
    for name, parameter in inspect.signature(load_flow(command).fn).parameters.items():
        assert (name.upper() if name == "images" else option_name(name)) in usage
        if parameter.default is False:
            assert f"[{option_name(name)}]" in usage  # a flag, without a value
    if command == "compare":
        assert (
            "--learning-rates LEARNING_RATES,..." in usage
            and "--models {baseline,batchnorm,deeper,improved},..." in usage
        )
