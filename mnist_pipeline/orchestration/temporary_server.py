"""The command line's temporary Prefect server, launched before Prefect is imported.

Without an API URL, Prefect starts a temporary server when a flow first needs the API: after the
command line has imported the flow, and after importing Prefect's whole server application into the
command's own process (3-3.5 s of CPU) only to start it in another. Launched here instead, with the
command of Prefect's `SubprocessASGIServer` but as the command's first step, the server starts on one
core while Prefect and the flow are imported on the other. Whether a temporary server is wanted at all
is one of Prefect's settings, readable only once Prefect is imported (0.8 s): the server is launched
unless the environment names an API, and stopped again if the settings name one after all.
"""

import atexit
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import AbstractContextManager
from pathlib import Path

from mnist_pipeline.errors import PipelineError

STARTED_HERE = "MNIST_TEMPORARY_PREFECT_SERVER"  # the API URL of the command's temporary server
# No block types registered at the server's start, unless the environment asks: a block registers its type when it
# is first saved (`Block.save`), and a lasting server registers them all at its own start. Registering at every
# command's start imports each installed Prefect collection (prefect-dask: Dask) to hash them: 0.4 s of CPU, idle.
NO_BLOCK_REGISTRATION_AT_START = {
    "PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
    "PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false",
}


class TemporaryServer:
    """A Prefect server on a free loopback port, launched now; the API of this process and its children once
    `adopt` finds that Prefect's settings want a temporary one."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.api_url = f"http://127.0.0.1:{port}/api"
        prefect_dir = Path(importlib.util.find_spec("prefect").origin).parent  # found, not imported
        arguments = ["--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port)]
        # The environment and working directory are this process's: the server reads the same settings.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect_dir.parent), *arguments]
            + ["--log-level", "error", "--lifespan", "on"],
            env={
                **NO_BLOCK_REGISTRATION_AT_START,
                **os.environ,
                "PREFECT_UI_ENABLED": "0",
                "PREFECT__SERVER_EPHEMERAL": "1",
                "PREFECT__SERVER_FINAL": "1",
            },
        )
        # Stopped after Prefect's own exit handlers, registered later, have sent the last logs and events.
        atexit.register(self.stop)

    def adopt(self) -> "TemporaryServer | None":
        """This server as the API where Prefect's settings (environment, profile, prefect.toml) name no API URL
        and allow temporary servers; otherwise it is stopped, and None."""
        from prefect.context import refresh_global_settings_context
        from prefect.settings import get_current_settings

        settings = get_current_settings()
        if settings.api.url or not settings.server.ephemeral.enabled:
            self.stop()
            return None
        os.environ.update({"PREFECT_API_URL": self.api_url, STARTED_HERE: self.api_url})
        refresh_global_settings_context()
        return self

    @staticmethod
    def run_settings() -> AbstractContextManager:
        """Prefect's settings for a flow run on this server: no heartbeats. They tell a lasting server which runs
        crashed; this one ends with the command, and a run's end waits up to a second for the heartbeat thread
        (which Prefect sleeps in one-second steps) to notice."""
        from prefect.settings import temporary_settings

        return temporary_settings(updates={"flows.heartbeat_frequency": None})

    def wait_until_ready(self) -> None:
        """Returns once the server answers; PipelineError if it exits or does not answer in time: within
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS of waiting, counted as Prefect counts it for its own."""
        from prefect.settings import get_current_settings

        waited, timeout = 0.0, get_current_settings().server.ephemeral.startup_timeout_seconds
        while self.process.poll() is None and waited < timeout:
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=5):
                    return
            except OSError:
                time.sleep(0.05)
                waited += 0.05
        problem = "stopped" if self.process.poll() is not None else "did not answer in time"
        raise PipelineError(
            f"the temporary Prefect server at {self.api_url} {problem}; raise "
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or start one with `make server` and set PREFECT_API_URL"
        )

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def launch_temporary_server() -> TemporaryServer | None:
    """A server launched now, unless the environment names an API URL or turns temporary servers off (the other
    settings sources are read, and the server stopped if they do either, by `TemporaryServer.adopt`)."""
    switch = os.environ.get("PREFECT_SERVER_EPHEMERAL_ENABLED", os.environ.get("PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"))
    disabled = (switch or "").lower() in ("0", "false", "no", "off")
    return None if os.environ.get("PREFECT_API_URL") or disabled else TemporaryServer()


def is_temporary_server(api_url: str | None) -> bool:
    """Whether `api_url` is no server that a person started: unset, or the command line's temporary one."""
    return not api_url or api_url == os.environ.get(STARTED_HERE)
