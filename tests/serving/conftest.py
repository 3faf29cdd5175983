"""Registries with small trained models (baseline, a few seconds of training on the test subset's
real digits), and a real `mnist-pipeline serve` on a free loopback port."""

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_pipeline.mnist import read_directory
from mnist_pipeline.registry import MODEL_FILE, Registry

SUBSET = Path(__file__).parents[1] / "data" / "mnist-first-1000"
CLI = str(Path(sys.executable).parent / "mnist-pipeline")


@pytest.fixture(scope="session")
def subset():
    return read_directory(SUBSET)


def register_trained(registry: Registry, data, epochs: int, seed: int) -> str:
    """A baseline trained on the subset's training digits, registered with its test accuracy."""
    import keras

    from mnist_pipeline.models import build_model, compile_model

    keras.utils.set_random_seed(seed)
    model = compile_model(build_model("baseline"))
    x = data.train_images[..., None].astype(np.float32) / 255
    model.fit(x, np.eye(10, dtype=np.float32)[data.train_labels], epochs=epochs, batch_size=32, verbose=0)
    predicted = model.predict(data.test_images[..., None].astype(np.float32) / 255, verbose=0).argmax(axis=1)
    metadata = {
        "parameters": {"model": "baseline", "epochs": epochs, "seed": seed},
        "scaling": {"mode": "unit", "mean": 0.0, "std": 1.0},
        "test_metrics": {"accuracy": float(np.mean(predicted == data.test_labels))},
        "created_at": datetime.now(UTC).isoformat(),
        "status": "challenger",
    }
    with registry.staging() as staged:
        model.save(staged / MODEL_FILE)
        return registry.publish(staged, metadata)


@pytest.fixture(scope="session")
def trained_registry(subset, tmp_path_factory) -> Path:
    """models/ with v0001 (champion) and v0002, two small trained baselines, and v0003, a damaged file."""
    root = tmp_path_factory.mktemp("trained") / "models"
    registry = Registry(root)
    register_trained(registry, subset, epochs=3, seed=1)
    register_trained(registry, subset, epochs=2, seed=2)
    damaged = register_trained(registry, subset, epochs=1, seed=3)
    (registry.path(damaged) / MODEL_FILE).write_bytes(b"PK\x03\x04 not a whole model")
    registry.promote("v0001", "the first one")
    return root


@pytest.fixture(autouse=True)
def mnist_for_the_leakage_check(mnist_dir, monkeypatch):
    """`add-data` and `serve` refuse copies of the MNIST test images, so they read them as flows do."""
    monkeypatch.setenv("MNIST_DATA_DIR", str(mnist_dir))


@pytest.fixture
def artifacts(trained_registry, tmp_path, monkeypatch) -> Path:
    """An artifacts folder of this test with a copy of the trained registry."""
    folder = tmp_path / "artifacts"
    shutil.copytree(trained_registry, folder / "models")
    monkeypatch.setenv("MNIST_ARTIFACTS_DIR", str(folder))
    return folder


def encoded(digit: np.ndarray, image_format: str) -> bytes:
    """A real MNIST digit as a person would send it: dark ink on white, scaled up, as PNG or JPEG."""
    paper = Image.fromarray(255 - digit).resize((140, 140), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    paper.convert("RGB").save(buffer, format=image_format, **({"quality": 85} if image_format == "JPEG" else {}))
    return buffer.getvalue()


def labeled_folder(folder: Path, rows: list[str]) -> Path:
    """Four real training digits as PNG (test digits are refused as leakage), a text file named .png, and
    labels.csv with `rows`."""
    digits = read_directory(SUBSET).train_images
    folder.mkdir()
    for index in range(4):
        (folder / f"{index}.png").write_bytes(encoded(digits[index], "PNG"))
    (folder / "notes.png").write_text("not an image")
    (folder / "labels.csv").write_text("file,label\n" + "\n".join(rows) + "\n")
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get_json(url: str, timeout: float = 10) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


class Service:
    """`mnist-pipeline serve` in its own process group, on a free loopback port."""

    def __init__(self, artifacts: Path, log: Path, *options: str):
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = log
        self.env = {**os.environ, "MNIST_ARTIFACTS_DIR": str(artifacts)}
        with open(log, "wb") as output:
            self.process = subprocess.Popen(
                [CLI, "serve", "--port", self.url.rsplit(":", 1)[1], "--poll-seconds", "0.5", *options],
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_until_up(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "serve exited:\n" + self.log.read_text()
            try:
                get_json(f"{self.url}/healthz", timeout=2)
                return
            except OSError:
                time.sleep(0.5)
        pytest.fail(f"serve not answering after {timeout} s:\n" + self.log.read_text())

    def cli(self, *arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run([CLI, *arguments], env=self.env, capture_output=True, text=True, timeout=300)

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGINT)
            self.process.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def service(artifacts, tmp_path):
    running = Service(artifacts, tmp_path / "serve.log")
    try:
        running.wait_until_up()
        yield running
    finally:
        running.stop()
