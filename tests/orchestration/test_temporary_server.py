"""The command line's temporary server: launched before Prefect's settings are read, kept only if they want it.

Each case runs in a fresh process, as the command line does: this session's own server is in Prefect's
settings context for the rest of the session."""

import os
import subprocess
import sys

import pytest

from mnist_pipeline.orchestration.temporary_server import TemporaryServer, launch_temporary_server
from tests.prefect_homes import prefect_home

ADOPT = """
import os
from prefect.settings import get_current_settings
from mnist_pipeline.orchestration.temporary_server import STARTED_HERE, launch_temporary_server

launched = launch_temporary_server()
server = launched.adopt()
if server is None:
    print("stopped" if launched.process.poll() is not None else "left running", "PREFECT_API_URL" in os.environ)
else:
    server.wait_until_ready()
    settings = get_current_settings()
    print("adopted", settings.api.url == server.api_url == os.environ[STARTED_HERE], settings.flows.heartbeat_frequency)
    with server.run_settings():
        print("heartbeat in runs", get_current_settings().flows.heartbeat_frequency)
    import httpx
    from prefect.filesystems import RemoteFileSystem
    print("block types at start", len(httpx.post(f"{server.api_url}/block_types/filter", json={}).json()))
    RemoteFileSystem(basepath="memory://results").save("results")
    print("a saved block loads", RemoteFileSystem.load("results").basepath)
    server.stop()
    print("stopped" if server.process.poll() is not None else "left running")
"""


def adopt_in_a_fresh_process(tmp_path, profile: dict[str, str]) -> list[str]:
    """What `ADOPT` prints with a Prefect home whose active profile holds `profile` (and no Prefect setting in
    the environment)."""
    home = prefect_home(tmp_path / "prefect")
    lines = ['active = "test"', "[profiles.test]", *(f'{name} = "{value}"' for name, value in profile.items())]
    (home / "profiles.toml").write_text("\n".join(lines) + "\n")
    environment = {name: value for name, value in os.environ.items() if not name.startswith("PREFECT_")}
    environment |= {"PREFECT_HOME": str(home), "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90"}
    result = subprocess.run(
        [sys.executable, "-c", ADOPT], capture_output=True, text=True, env=environment, timeout=180, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.splitlines()


@pytest.mark.parametrize(
    "profile",
    [
        {"PREFECT_SERVER_EPHEMERAL_ENABLED": "true", "PREFECT_API_URL": "http://127.0.0.1:9/api"},
        {"PREFECT_SERVER_EPHEMERAL_ENABLED": "false"},
        {},  # Prefect's default: temporary servers are off unless the profile turns them on
    ],
)
def test_a_server_the_settings_do_not_want_is_stopped(tmp_path, profile):
    """A profile that names an API, or turns temporary servers off: the launched server is stopped, unused."""
    assert adopt_in_a_fresh_process(tmp_path, profile) == ["stopped False"]


def test_a_wanted_server_becomes_the_api_and_answers(tmp_path):
    assert adopt_in_a_fresh_process(tmp_path, {"PREFECT_SERVER_EPHEMERAL_ENABLED": "true"}) == [
        "adopted True 180",
        "heartbeat in runs None",  # a run's end waits for no heartbeat thread
        "block types at start 0",  # none registered at start: the database is new
        "a saved block loads memory://results",  # saving registers the block's type
        "stopped",
    ]


@pytest.mark.parametrize(
    "environment",
    [
        {"PREFECT_API_URL": "http://127.0.0.1:9/api"},
        {"PREFECT_SERVER_EPHEMERAL_ENABLED": "false"},
        {"PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "0"},
    ],
)
def test_no_server_is_launched_when_the_environment_says_so(environment, monkeypatch):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(TemporaryServer, "__init__", lambda self: pytest.fail("a server was launched"))
    assert launch_temporary_server() is None


@pytest.mark.parametrize(
    "main, code, stdout, traceback",
    [
        ("lambda: print('result', end='') or 0", 0, "result", False),  # piped output is flushed
        ("lambda: 3", 3, "", False),
        ("lambda: sys.exit(2)", 2, "", False),  # argparse's usage errors
        ("lambda: 1 / 0", 1, "", True),  # a bug: its traceback, then exit status 1
    ],
)
def test_the_command_exits_with_mains_status_and_output(main, code, stdout, traceback):
    program = f"import sys; from mnist_pipeline.flows import cli; cli.main = {main}; cli.run()"
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout) == (code, stdout)
    assert ("Traceback" in result.stderr and "ZeroDivisionError" in result.stderr) == traceback
