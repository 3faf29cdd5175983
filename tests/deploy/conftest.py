"""prefect.yaml end to end: a real Prefect server on a free loopback port (SQLite in a temporary
PREFECT_HOME), the work pool, `prefect --no-prompt deploy --all`, a process worker; headless Chromium (the `browser` fixture of tests/conftest.py)."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from prefect import get_client
from prefect.client.schemas.filters import DeploymentFilter
from prefect.settings import PREFECT_API_URL, temporary_settings

from mnist_pipeline import settings
from tests.prefect_homes import prefect_home

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).parent / "prefect")


def signal_group(process: subprocess.Popen, signal_number: int) -> None:
    try:
        os.killpg(process.pid, signal_number)
    except ProcessLookupError:
        pass


class PrefectStack:
    """Processes started in their own process groups, stopped together; a client for their server."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.processes: dict[str, subprocess.Popen] = {}
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.url = f"http://127.0.0.1:{probe.getsockname()[1]}"
        self.env = {name: value for name, value in os.environ.items() if not name.startswith("PREFECT_")}
        self.env |= {
            "PREFECT_HOME": str(prefect_home(directory / "prefect-home")),
            "PREFECT_API_URL": f"{self.url}/api",
            "PREFECT_UI_API_URL": f"{self.url}/api",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_WORKER_QUERY_SECONDS": "2",
            "MNIST_ARTIFACTS_DIR": str(directory / "artifacts"),
        }

    def start(self, name: str, *arguments: str, **extra_env: str) -> None:
        with open(self.directory / f"{name}.log", "wb") as log:
            self.processes[name] = subprocess.Popen(
                [PREFECT, *arguments],
                cwd=ROOT,
                env=self.env | extra_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> None:
        """Ctrl-C to each process group (a worker ignores SIGTERM), then SIGKILL to what is left."""
        for process in reversed(self.processes.values()):
            signal_group(process, signal.SIGINT)
        for process in reversed(self.processes.values()):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
            signal_group(process, signal.SIGKILL)
            process.wait()

    def log_tail(self, name: str, lines: int = 40) -> str:
        return "\n".join((self.directory / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])

    def wait_until_healthy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.processes["server"].poll() is None, "prefect server exited:\n" + self.log_tail("server")
            try:
                with urllib.request.urlopen(f"{self.url}/api/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(1)
        pytest.fail(f"prefect server not healthy after {timeout} s:\n" + self.log_tail("server"))

    def cli(self, *arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [PREFECT, *arguments], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=300
        )

    @contextmanager
    def client(self):
        with temporary_settings({PREFECT_API_URL: f"{self.url}/api"}), get_client(sync_client=True) as client:
            yield client

    def deployment(self, name: str):
        with self.client() as client:
            return client.read_deployment_by_name(f"{name}/{name}")

    def flow_runs(self, deployment_id, **filters) -> list:
        with self.client() as client:
            return client.read_flow_runs(deployment_filter=DeploymentFilter(id={"any_": [deployment_id]}), **filters)

    def wait_for_final_state(self, flow_run_id, timeout: float = 300):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.client() as client:
                flow_run = client.read_flow_run(flow_run_id)
            if flow_run.state and flow_run.state.is_final():
                return flow_run
            time.sleep(2)
        pytest.fail(
            f"flow run {flow_run_id} not finished after {timeout} s ({flow_run.state!r}); worker log:\n"
            + self.log_tail("worker")
        )


@pytest.fixture(scope="package")
def stack(tmp_path_factory, mnist_dir):
    """Server, work pool, every deployment of prefect.yaml, and a worker that reads MNIST from mnist_dir."""
    stack = PrefectStack(tmp_path_factory.mktemp("prefect-e2e"))
    try:
        stack.start("server", "server", "start", "--host", "127.0.0.1", "--port", stack.url.rsplit(":", 1)[1])
        stack.wait_until_healthy()
        for arguments in (
            ["work-pool", "create", "mnist-pool", "--type", "process"],
            ["--no-prompt", "deploy", "--all"],
        ):
            result = stack.cli(*arguments)
            assert result.returncode == 0, f"prefect {' '.join(arguments)} failed:\n{result.stdout}\n{result.stderr}"
        stack.start("worker", "worker", "start", "--pool", "mnist-pool", MNIST_DATA_DIR=str(mnist_dir))
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def screenshots(capsys) -> Path:
    directory = settings.artifacts_dir() / "e2e"
    directory.mkdir(parents=True, exist_ok=True)
    yield directory
    with capsys.disabled():
        print(f"\nUI screenshots: {directory}")
