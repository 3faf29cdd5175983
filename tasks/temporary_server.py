"""The command line's temporary Prefect server, started before the flow is imported.

Without an API URL, Prefect starts a temporary server when a flow first needs the API: after the
command line has imported the flow, and after importing Prefect's whole server application into the
command's own process (3-3.5 s of CPU) only to start it in another. Started here instead, with the
command and environment of Prefect's `SubprocessASGIServer` but before the flow's imports, the server
starts on one core while the flow is imported on the other.
"""

import atexit
import os
import socket
import subprocess
import sys
import time
import urllib.request

import prefect
from prefect.context import refresh_global_settings_context
from prefect.settings import get_current_settings

from mnist_pipeline.errors import PipelineError

STARTED_HERE = "MNIST_TEMPORARY_PREFECT_SERVER"  # the API URL of the command's temporary server


class TemporaryServer:
    """A Prefect server on a free loopback port, the API of this process and its children until it exits."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.api_url = f"http://127.0.0.1:{port}/api"
        arguments = ["--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port)]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent), *arguments]
            + ["--log-level", "error", "--lifespan", "on"],
            env={
                **os.environ,
                "PREFECT_UI_ENABLED": "0",
                "PREFECT__SERVER_EPHEMERAL": "1",
                "PREFECT__SERVER_FINAL": "1",
                **get_current_settings().to_environment_variables(exclude_unset=True),
            },
        )
        # Stopped after Prefect's own exit handlers, registered later, have sent the last logs and events.
        atexit.register(self.stop)
        os.environ.update({"PREFECT_API_URL": self.api_url, STARTED_HERE: self.api_url})
        refresh_global_settings_context()

    def wait_until_ready(self) -> None:
        """Returns once the server answers; PipelineError if it exits or does not answer in time: within
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS of waiting, counted as Prefect counts it for its own."""
        waited, timeout = 0.0, get_current_settings().server.ephemeral.startup_timeout_seconds
        while self.process.poll() is None and waited < timeout:
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=5):
                    return
            except OSError:
                time.sleep(0.1)
                waited += 0.1
        problem = "stopped" if self.process.poll() is not None else "did not answer in time"
        raise PipelineError(
            f"the temporary Prefect server at {self.api_url} {problem}; raise "
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or start one with `make server` and set PREFECT_API_URL"
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_temporary_server() -> TemporaryServer | None:
    """A server started now where Prefect would start a temporary one later: no API URL in any of Prefect's
    settings sources (environment, profile, prefect.toml) and temporary servers allowed."""
    settings = get_current_settings()
    if settings.api.url or not settings.server.ephemeral.enabled:
        return None
    return TemporaryServer()


def is_temporary_server(api_url: str | None) -> bool:
    """Whether `api_url` is no server that a person started: unset, or the command line's temporary one."""
    return not api_url or api_url == os.environ.get(STARTED_HERE)
