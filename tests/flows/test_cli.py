import contextlib
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import mnist_pipeline.mnist
from mnist_pipeline.flows.cli import FLOWS, kept_out, load_flow, main, option_name
from mnist_pipeline.registry import Registry
from tests.prefect_homes import prefect_home


def cli(*arguments, tmp_path, timeout=240, settings=None):
    """Run `mnist-pipeline` in a fresh process with its own Prefect home and temporary server."""
    environment = {
        **os.environ,
        "PREFECT_HOME": str(prefect_home(tmp_path / "prefect")),
        "MNIST_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",  # a loaded machine takes longer than 20 s
        **(settings or {}),
    }
    for setting in ("PREFECT_API_URL", "PREFECT_SERVER_ANALYTICS_ENABLED"):  # the CLI's default is under test
        environment.pop(setting, None)
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
        (["--limit", "5"], "invalid --limit '5': Value error, must be 0 (all of them) or at least 10"),
        (["--epochs", "-1"], "invalid --epochs '-1': Input should be greater than or equal to 0"),
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
    result = cli("cv", "--folds", "1", tmp_path=tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "mnist-pipeline cv: error: invalid --folds '1': Input should be greater than or equal to 2"
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
        "--runner",
        "thread",
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


QUICK_CV = ["cv", "--folds", "2", "--epochs", "1", "--limit", "100", "--runner", "thread"]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("mnist-pipeline cv: error:")]


@pytest.mark.parametrize(
    "options, settings, message",
    [
        (
            ["--output", "/proc/nope"],
            {},
            "output_dir /proc/nope: cannot create the folder (No such file or directory); pass a writable folder",
        ),
        (
            [],
            {"MNIST_ARTIFACTS_DIR": "/proc/nope"},
            "MNIST_ARTIFACTS_DIR /proc/nope: cannot create a run folder in it (No such file or directory); "
            "set it to a writable folder",
        ),
        (
            [],
            {"MNIST_CACHE_URL": "/proc/nope"},
            "MNIST_CACHE_URL /proc/nope: cannot write the array cache (No such file or directory); "
            "set it to a writable folder with free space",
        ),
    ],
    ids=["output", "artifacts", "cache"],
)
def test_a_folder_that_cannot_be_written_is_named_by_its_option_or_setting_in_one_line(
    prefect_server, artifacts_dir, mnist_dir, capsys, monkeypatch, options, settings, message
):
    for setting, value in settings.items():
        monkeypatch.setenv(setting, value)
    assert main([*QUICK_CV, "--data-dir", str(mnist_dir), *options]) == 1
    assert error_lines(capsys.readouterr().err) == [f"mnist-pipeline cv: error: {message}"]


@pytest.mark.parametrize("bug", [KeyError("train_images"), ValueError("operands could not be broadcast")])
def test_a_bug_keeps_its_traceback(prefect_server, artifacts_dir, mnist_dir, monkeypatch, bug):
    def read_directory(directory):
        raise bug

    monkeypatch.setattr(mnist_pipeline.mnist, "read_directory", read_directory)
    with pytest.raises(type(bug), match=str(bug.args[0])):
        main([*QUICK_CV, "--data-dir", str(mnist_dir)])


def test_offline_without_local_data_fails_at_once_saying_how_to_use_local_files(
    prefect_server, artifacts_dir, tmp_path, capsys, monkeypatch
):
    url = "http://mnist.invalid/mnist.npz"  # .invalid never resolves, as no name does offline
    real_download, calls = mnist_pipeline.mnist.download, []

    def counted_download(*arguments, **options):
        calls.append(arguments)
        return real_download(*arguments, **options)

    monkeypatch.setattr(mnist_pipeline.mnist, "KERAS_URL", url)
    monkeypatch.setattr(mnist_pipeline.mnist, "download", counted_download)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "downloads"))
    monkeypatch.delenv("MNIST_DATA_DIR", raising=False)
    assert main(QUICK_CV) == 1
    [line] = error_lines(capsys.readouterr().err)
    assert re.fullmatch(
        rf"mnist-pipeline cv: error: MNIST could not be downloaded from {re.escape(url)} \(\[Errno -\d+\] [^)]+\); "
        r"to use local files, set MNIST_DATA_DIR \(or pass --data-dir\) to a folder with .*",
        line,
    )
    assert len(calls) == 1, "a name that does not resolve is not retried"


def test_a_diverging_run_prints_one_line_and_no_traceback_from_any_process(tmp_path, mnist_dir):
    result = cli(
        "cv",
        "--limit",
        "300",
        "--folds",
        "2",
        "--epochs",
        "1",
        "--learning-rate",
        "1e9",
        "--data-dir",
        str(mnist_dir),
        tmp_path=tmp_path,
        timeout=400,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert "telemetry" not in result.stderr
    assert (
        [line.split("; fold 2")[0] for line in error_lines(result.stderr)]
        == [
            "mnist-pipeline cv: error: fold 1 failed: the loss became nan in epoch 1, by batch 5; lower the learning rate"  # of 5
        ]
    )
    assert "2 failed: the loss became" in result.stderr and "folds finished" in result.stderr


def test_the_command_line_switches_off_the_temporary_server_telemetry_unless_asked(tmp_path):
    show = (
        "from mnist_pipeline.flows.cli import main; main(['models']); "
        "from prefect.settings import get_current_settings; print(get_current_settings().server.analytics_enabled)"
    )
    environment = {**os.environ, "MNIST_ARTIFACTS_DIR": str(tmp_path)}
    environment.pop("PREFECT_SERVER_ANALYTICS_ENABLED", None)
    runs = [
        subprocess.run([sys.executable, "-c", show], env=env, capture_output=True, text=True, timeout=120)
        for env in (environment, {**environment, "PREFECT_SERVER_ANALYTICS_ENABLED": "true"})
    ]
    assert [run.stdout.splitlines()[-1] for run in runs] == ["False", "True"], [run.stderr[-2000:] for run in runs]


def test_approval_without_a_prefect_server_is_refused_in_one_line_before_training(tmp_path, mnist_dir):
    result = cli("retrain", "--approval", "always", "--limit", "100", "--data-dir", str(mnist_dir), tmp_path=tmp_path)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("mnist-pipeline retrain: error:")]
    assert errors == [
        "mnist-pipeline retrain: error: approval=always needs a Prefect server to wait on (set PREFECT_API_URL, "
        "e.g. after `make server`); or pass approval=auto"
    ]
    assert not (tmp_path / "artifacts" / "models").exists()


def test_the_temporary_server_stops_with_the_command(tmp_path):
    """The server starts before the command's options are checked (it starts while the flow is imported)."""
    assert cli("cv", "--folds", "1", tmp_path=tmp_path).returncode == 2
    home = f"PREFECT_HOME={tmp_path / 'prefect'}".encode()
    left = []
    for environment in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):  # processes that ended meanwhile
            if home in environment.read_bytes().split(b"\0"):
                left.append((environment.parent / "cmdline").read_bytes())
    assert not left


def test_a_temporary_server_that_does_not_answer_is_a_one_line_error(tmp_path, mnist_dir):
    result = cli(
        "cv",
        "--limit",
        "100",
        "--data-dir",
        str(mnist_dir),
        tmp_path=tmp_path,
        settings={"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "0"},
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert re.fullmatch(
        r"mnist-pipeline cv: error: the temporary Prefect server at http://127\.0\.0\.1:\d+/api did not answer in "
        r"time; raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or start one with `make server` and set "
        r"PREFECT_API_URL",
        result.stderr.strip().splitlines()[-1],
    ), result.stderr
    assert not (tmp_path / "artifacts").exists()


def test_a_kept_out_package_looks_not_installed_inside_and_imports_as_usual_after(tmp_path, monkeypatch):
    (tmp_path / "optional_extra.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(tmp_path)
    monkeypatch.delitem(sys.modules, "optional_extra", raising=False)
    with kept_out(["optional_extra", "json"]):
        with pytest.raises(ImportError):
            import optional_extra
        assert json.loads("[1]") == [1]  # imported before: untouched
    import optional_extra

    assert optional_extra.VALUE == 1
    monkeypatch.delitem(sys.modules, "optional_extra")
