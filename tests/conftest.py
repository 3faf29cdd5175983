import hashlib
import http.server
import os
import shutil
import threading
import uuid
from pathlib import Path

import pytest

from tests.prefect_homes import migrated_database

# The CLI tests' processes start Prefect's temporary server, which a loaded machine starts in over its default 20 s.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")

SUBSET_DIR = Path(__file__).parent / "data" / "mnist-first-1000"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_xdist_make_scheduler(config, log):
    """Under pytest-xdist (`make test`), each test goes to the next free worker, except the deploy tests: they share
    one Prefect stack (server, UI, worker), so they run together on one worker, and first, being the longest.
    (xdist's `--dist loadgroup` would do it by markers, but with pytest 9 it leaves every test a group of its own.)"""
    from xdist.scheduler import LoadScopeScheduling

    class DeployTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "tests/deploy" if nodeid.startswith("tests/deploy/") else nodeid

    return DeployTogether(config, log)


@pytest.fixture(scope="session", autouse=True)
def artifacts_outside_the_checkout(tmp_path_factory):
    """Tests (and the processes they start) that name no artifacts folder of their own write under the session's
    temporary folder, never into the checkout's artifacts/."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MNIST_ARTIFACTS_DIR", str(tmp_path_factory.mktemp("artifacts")))
        yield


@pytest.fixture(scope="session", autouse=True)
def mnist_dir():
    """The MNIST of every test and of every process a test starts: the real subset shipped with the tests (1,000
    training and 200 test images), whatever $MNIST_DATA_DIR names, so that every machine tests the same data, and
    quickly. Full MNIST is for `make run` and bench/."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MNIST_DATA_DIR", str(SUBSET_DIR))
        yield SUBSET_DIR


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """One temporary Prefect server (SQLite) shared by the session's tests, with result records kept
    in a folder of this session: a record from an earlier session must not make a task Cached. Its database starts
    as a copy of the session's migrated one: the harness names its database file in a folder of its own
    `mkdtemp`, which is handed that copy."""
    import prefect.testing.utilities
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    def folder_with_a_migrated_database() -> str:
        folder = tmp_path_factory.mktemp("prefect-test-harness")
        shutil.copyfile(migrated_database(), folder / "prefect-test.db")
        return str(folder)

    storage = tmp_path_factory.mktemp("prefect-results")
    with pytest.MonkeyPatch.context() as patch, temporary_settings({PREFECT_LOCAL_STORAGE_PATH: storage}):
        patch.setenv("PREFECT_LOCAL_STORAGE_PATH", str(storage))
        patch.setattr(prefect.testing.utilities, "mkdtemp", folder_with_a_migrated_database)
        with prefect_test_harness(server_startup_timeout=90):
            yield


@pytest.fixture
def artifacts_dir(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "artifacts"
    monkeypatch.setenv("MNIST_ARTIFACTS_DIR", str(path))
    return path


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, through Playwright (which downloads no browser here)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


PAYLOAD = b"pretend this is mnist.npz\n" * 1000
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def server(monkeypatch):
    """A local server of PAYLOAD at /mnist.npz (and of HTTP errors at /status/<code>); yields (url, list of requested paths)."""
    for variable in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            if self.path.startswith("/status/"):  # /status/503 answers 503
                self.send_error(int(self.path.split("/")[2]))
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/mnist.npz", requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's S3 server on a free loopback port for the session: its URL. S3 checks `If-None-Match` and stores
    the object in one step; moto does it in two, so its PutObject is serialized here to be as atomic as S3's."""
    from moto.s3.responses import S3Response
    from moto.server import ThreadedMotoServer

    put_object, one_at_a_time = S3Response.put_object, threading.Lock()

    def atomic_put_object(self):
        with one_at_a_time:
            return put_object(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(S3Response, "put_object", atomic_put_object)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def s3_bucket(s3_endpoint, monkeypatch) -> str:
    """A new empty bucket on the session's S3 server, reached through this process's environment: its URL."""
    import boto3

    environment = {**S3_CREDENTIALS, "AWS_ENDPOINT_URL": s3_endpoint, "no_proxy": "127.0.0.1,localhost"}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    name = f"test-{uuid.uuid4().hex[:16]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return f"s3://{name}"
