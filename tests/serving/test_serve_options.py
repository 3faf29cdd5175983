"""`serve`'s hardening options through the CLI's main(), uvicorn replaced by a catch of the app it gets."""

import pytest
import uvicorn
from fastapi.testclient import TestClient

from mnist_pipeline.flows.cli import main
from tests.serving.conftest import encoded


@pytest.fixture
def served(monkeypatch, artifacts_dir) -> list:
    """The (app, options) `serve` hands uvicorn, instead of running it."""
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append((app, options)))
    monkeypatch.delenv("MNIST_FEEDBACK_TOKEN", raising=False)
    monkeypatch.delenv("MNIST_FEEDBACK_TOKEN_FILE", raising=False)
    return calls


def test_the_token_file_host_names_and_limits_reach_the_service(served, tmp_path, subset):
    token = tmp_path / "token"
    token.write_text("s3cret-from-a-file\n")
    options = ["--host", "0.0.0.0", "--feedback-token-file", str(token), "--max-files", "2"]
    assert main(["serve", *options, "--allowed-hosts", "digits.example.org, 10.0.0.7"]) == 0
    (app, uvicorn_options), digit = served[0], encoded(subset.train_images[0], "PNG")  # not a test image
    assert uvicorn_options["host"] == "0.0.0.0"
    with TestClient(app, base_url="http://digits.example.org") as client:
        assert client.post("/feedback?label=7", content=digit).status_code == 401
        authorized = {"Authorization": "Bearer s3cret-from-a-file"}
        assert client.post("/feedback?label=7", content=digit, headers=authorized).status_code == 200
        three = [("file", ("a.png", digit))] * 3
        assert client.post("/feedback?label=7", files=three, headers=authorized).status_code == 413
        for host in ("10.0.0.7:8000", "localhost:8000", "127.0.0.1"):
            assert client.get("/", headers={"Host": host}).status_code == 200
        assert client.get("/", headers={"Host": "0.0.0.0:8000"}).status_code == 400
        assert client.get("/", headers={"Host": "elsewhere.example"}).status_code == 400


def test_a_token_file_that_is_missing_empty_or_given_twice_fails_in_one_line(served, tmp_path, capsys, monkeypatch):
    empty = tmp_path / "empty"
    empty.write_text(" \n")
    cases = [
        (["--feedback-token-file", str(tmp_path / "missing")], "missing: cannot read it (No such file or directory)"),
        (["--feedback-token-file", str(empty)], f"--feedback-token-file {empty} is empty: write the token in it"),
        (["--feedback-token-file", str(empty), "--feedback-token", "x"], "pass one"),
        (["--max-files", "0"], "--max-files must be at least 1, got 0"),
        (["--max-concurrent", "0"], "--max-concurrent must be at least 1, got 0"),
    ]
    for options, message in cases:
        assert main(["serve", *options]) == 1
        error = capsys.readouterr().err
        assert message in error and error.splitlines() == [error.strip()], error
    monkeypatch.setenv("MNIST_FEEDBACK_TOKEN_FILE", str(empty))  # read when the options are parsed
    assert main(["serve"]) == 1 and "is empty" in capsys.readouterr().err
    assert served == []
