"""Overload: the worst requests the limits allow, against another client's single digits (issue 27).

    MNIST_DATA_DIR=/path/to/mnist .venv/bin/python bench/serve_overload.py --duration 60

Starts a real `mnist-pipeline serve` on a free loopback port (on a registry of its own, where it trains
a small baseline first, as tests/serving/conftest.py does, unless `--artifacts` holds a champion), then
for `--duration` seconds:

- `--attackers` (4) connections each send, back to back, the costliest request the limits allow:
  `--max-files` (32) images in one multipart body under `--max-body-mb` (10 MB), each image the
  candidate (`--attack`) that costs the service the most CPU per request, measured first with the
  service's own decoding (`digit_from_bytes`): a 4-megapixel PNG of noise (2 fit in a body), 4-megapixel
  PNGs that compress well (a tile of noise repeated; a palette image; 16-bit grey), huge JPEGs
  decoded reduced (draft mode);
- one victim client sends a real MNIST test digit (dark on white, 140x140 PNG, as tests/serving's
  `encoded`) as a raw body, one request after the other (or `--victim-rate` a second), and records
  each latency.

Prints the candidates' costs, the victim's p50/p95/p99/max and its answers by status (503s counted
apart), the attackers' answers by status, the service's CPU, peak RSS (its process tree, sampled every
100 ms, and VmHWM), whether it is alive and answering /healthz at the end, and a reference CPU figure
(ten 1000x1000 float64 matmuls, before and after) since the machine's speed drifts. Loopback only;
every loop is bounded by the duration; the service is stopped at the end.
"""

import argparse
import collections
import datetime
import http.client
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from measure import conditions
from serve_load import bodies

ROOT = Path(__file__).resolve().parents[1]
SUBSET = ROOT / "tests" / "data" / "mnist-first-1000"
CLI = str(Path(sys.executable).parent / "mnist-pipeline")
HOST = "127.0.0.1"
SIDE = 2000  # 2000 x 2000 = the 4-megapixel ceiling (MNIST_MAX_IMAGE_PIXELS' default)


# --- a model to serve ---------------------------------------------------------------------------


def train_champion(artifacts: Path) -> None:
    """A baseline trained 3 epochs on the test subset's 1,000 training digits (a few seconds), the
    champion of `artifacts`/models, as tests/serving/conftest.py's `trained_registry` makes v0001."""
    from datetime import UTC, datetime

    import keras

    from mnist_pipeline.mnist import read_directory
    from mnist_pipeline.models import build_model, compile_model
    from mnist_pipeline.registry import MODEL_FILE, Registry

    data = read_directory(SUBSET)
    keras.utils.set_random_seed(1)
    model = compile_model(build_model("baseline"))
    x = data.train_images[..., None].astype(np.float32) / 255
    model.fit(x, np.eye(10, dtype=np.float32)[data.train_labels], epochs=3, batch_size=32, verbose=0)
    predicted = model.predict(data.test_images[..., None].astype(np.float32) / 255, verbose=0).argmax(axis=1)
    metadata = {
        "parameters": {"model": "baseline", "epochs": 3, "seed": 1},
        "scaling": {"mode": "unit", "mean": 0.0, "std": 1.0},
        "test_metrics": {"accuracy": float(np.mean(predicted == data.test_labels))},
        "created_at": datetime.now(UTC).isoformat(),
        "status": "challenger",
    }
    registry = Registry(artifacts / "models")
    with registry.staging() as staged:
        model.save(staged / MODEL_FILE)
        version = registry.publish(staged, metadata)
    registry.promote(version, "serve_overload's model")


def has_champion(artifacts: Path) -> bool:
    return (artifacts / "models" / "champion").is_dir() and any((artifacts / "models" / "champion").iterdir())


# --- what the clients send ----------------------------------------------------------------------


def encoded(image, kind: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=kind, **options)
    return buffer.getvalue()


def candidates(seed: int = 27) -> dict[str, bytes]:
    """Images at or under the pixel ceiling (a JPEG: once drafted) that are costly to decode."""
    from PIL import Image

    random = np.random.default_rng(seed)
    noise = random.integers(0, 256, (SIDE, SIDE), dtype=np.uint8)
    tile = np.tile(random.integers(0, 256, (50, 50), dtype=np.uint8), (SIDE // 50, SIDE // 50))
    rgb_tile = np.tile(random.integers(0, 256, (50, 50, 3), dtype=np.uint8), (SIDE // 50, SIDE // 50, 1))
    shapes = np.tile(
        np.kron(np.eye(2, dtype=np.uint8) * 255, np.ones((250, 250), np.uint8)), (SIDE // 500, SIDE // 500)
    )
    found = {
        "PNG 2000x2000 grey noise": encoded(Image.fromarray(noise), "PNG"),
        "PNG 2000x2000 grey, a 50x50 tile of noise repeated": encoded(Image.fromarray(tile), "PNG"),
        "PNG 2000x2000 RGB, a 50x50 tile of noise repeated": encoded(Image.fromarray(rgb_tile), "PNG"),
        "PNG 2000x2000 palette, a 50x50 tile repeated": encoded(Image.fromarray(rgb_tile).quantize(256), "PNG"),
        "PNG 2000x2000 16-bit grey, a 50x50 tile repeated": encoded(
            Image.fromarray(tile.astype(np.uint16) * 257), "PNG"
        ),
        "PNG 2000x2000 RGBA, checkerboard ink in alpha": encoded(
            Image.fromarray(np.dstack([np.zeros((SIDE, SIDE, 3), np.uint8), shapes])), "PNG"
        ),
        "PNG 2000x2000 RGBA opaque, a checkerboard": encoded(
            Image.fromarray(np.dstack([shapes, shapes, shapes, np.full((SIDE, SIDE), 255, np.uint8)])), "PNG"
        ),
    }
    found["JPEG 2000x2000 grey, a 50x50 tile of noise repeated"] = encoded(Image.fromarray(tile), "JPEG", quality=90)
    # a JPEG over the ceiling is decoded at 1/2, 1/4 or 1/8 (the first that fits): its whole entropy stream is
    # read, but the pixels made are at most 4 megapixels
    big_tile = np.tile(tile[:500, :500], (8, 8))
    found["JPEG 4000x4000 grey, a 50x50 tile of noise repeated (drafted at 1/2)"] = encoded(
        Image.fromarray(big_tile), "JPEG", quality=90
    )
    del big_tile
    # (13000x13000: Pillow itself refuses images over 2 x 89,478,485 pixels as decompression bombs, at open)
    for side, scale in ((8000, 4), (13000, 8), (16000, 8)):
        flat = Image.new("L", (side, side), 255)
        flat.paste(0, (side // 3, side // 4, side // 2, 3 * side // 4))
        found[f"JPEG {side}x{side} grey, a flat page with a bar (drafted at 1/{scale})"] = encoded(
            flat, "JPEG", quality=90
        )
        del flat
    return found


def decode_cpu(data: bytes, repeats: int = 3) -> tuple[float, str]:
    """Best-of CPU seconds of the service's own preparation of `data` in this thread, and its outcome."""
    from mnist_pipeline.images import ImageError, digit_from_bytes

    best, outcome = float("inf"), "a digit"
    for _ in range(repeats):
        started = time.thread_time()
        try:
            digit_from_bytes(data)
        except ImageError as error:
            outcome = f"refused: {error}"
        best = min(best, time.thread_time() - started)
    return best, outcome


def multipart(images: list[bytes]) -> tuple[bytes, str]:
    boundary = "overload" + "7" * 24
    parts = []
    for index, data in enumerate(images):
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{index}.img"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def files_that_fit(data: bytes, max_files: int, max_body: int) -> int:
    count = max_files
    while count > 0 and len(multipart([data] * count)[0]) > max_body:
        count -= 1
    return count


def choose_attack(found: dict[str, bytes], max_files: int, max_body: int, wanted: str | None) -> str:
    print("| candidate | bytes | decode CPU ms | files per request | CPU ms per request | CPU ms per MB sent |")
    print("|---|---|---|---|---|---|")
    costs = {}
    for name, data in found.items():
        cpu, outcome = decode_cpu(data)
        count = files_that_fit(data, max_files, max_body)
        note = "" if outcome == "a digit" else f" ({outcome[:60]})"
        costs[name] = count * cpu
        print(
            f"| {name}{note} | {len(data):,} | {1000 * cpu:.0f} | {count} | {1000 * count * cpu:,.0f} "
            f"| {1000 * cpu / (len(data) / 1e6):,.0f} |",
            flush=True,
        )
    chosen = wanted or max(costs, key=costs.get)
    print(f"\nAttack: {chosen} ({'chosen' if wanted else 'the costliest per request'}).\n")
    return chosen


# --- the service --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def request(port: int, method: str, path: str, body: bytes = b"", content_type: str = "image/png", timeout=30):
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request(method, path, body=body or None, headers={"Content-Type": content_type} if body else {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_until_up(port: int, process: subprocess.Popen, limit: float = 300) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"serve exited with {process.returncode} before answering")
        try:
            if request(port, "GET", "/healthz", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"serve did not answer /healthz within {limit:.0f} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


class Memory:
    """The service's process tree's RSS, sampled every 100 ms."""

    def __init__(self, pid: int):
        self.process, self.peak, self.samples = psutil.Process(pid), 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                tree = [self.process, *self.process.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in tree))
                self.samples += 1
            except psutil.Error:
                return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join()

    def high_water_mark(self) -> int:
        with open(f"/proc/{self.process.pid}/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))


# --- the clients --------------------------------------------------------------------------------


def attacker(port: int, body: bytes, content_type: str, until: float, statuses: collections.Counter) -> None:
    """Sends `body` back to back on one keep-alive connection until `until`; a dropped one is reopened."""
    connection = None
    while time.monotonic() < until:
        try:
            if connection is None:
                connection = http.client.HTTPConnection(HOST, port, timeout=120)
            connection.request("POST", "/predict", body=body, headers={"Content-Type": content_type})
            response = connection.getresponse()
            response.read()
            statuses[response.status] += 1
        except (OSError, http.client.HTTPException) as error:
            statuses[f"connection error ({type(error).__name__})"] += 1
            if connection is not None:
                connection.close()
            connection = None
            time.sleep(0.05)
    if connection is not None:
        connection.close()


def victim(port: int, images: list[bytes], until: float, interval: float, results: list) -> None:
    """Single digits, one request after the other (or one each `interval` s): (latency s, status)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    index, next_start = 0, time.monotonic()
    try:
        while time.monotonic() < until:
            if interval:
                time.sleep(max(0.0, next_start - time.monotonic()))
                next_start += interval
            started = time.perf_counter()
            try:
                connection.request(
                    "POST", "/predict", body=images[index % len(images)], headers={"Content-Type": "image/png"}
                )
                response = connection.getresponse()
                answer = response.read()
                status = response.status
                if status == 200 and "digit" not in json.loads(answer):
                    status = "200 without a digit"
            except (OSError, http.client.HTTPException) as error:
                status = f"connection error ({type(error).__name__})"
                connection.close()
                connection = http.client.HTTPConnection(HOST, port, timeout=60)
            results.append((time.perf_counter() - started, status))
            index += 1
    finally:
        connection.close()


def percentiles(latencies: list[float]) -> dict[str, float]:
    ms = sorted(1000 * s for s in latencies)
    if not ms:
        return {}
    cuts = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": ms[-1]}


def reference_cpu() -> tuple[float, float]:
    """Wall and CPU seconds of ten 1000x1000 float64 matmuls (this machine's speed right now)."""
    random = np.random.default_rng(0)
    a, b = random.random((1000, 1000)), random.random((1000, 1000))
    a @ b
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(10):
        a @ b
    return time.perf_counter() - wall, time.process_time() - cpu


def summary(label: str, results: list) -> str:
    stats = percentiles([latency for latency, _ in results])
    counts = collections.Counter(status for _, status in results)
    shown = ", ".join(f"{status}: {n:,}" for status, n in sorted(counts.items(), key=str))
    figures = " ".join(f"{key} {value:.0f} ms" for key, value in stats.items())
    return f"{label}: {len(results):,} requests ({shown}); {figures}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60, help="seconds of attack (default: 60)")
    parser.add_argument("--attackers", type=int, default=4, help="attacking connections (default: 4)")
    parser.add_argument("--victim-rate", type=float, default=0, help="victim requests a second (0: back to back)")
    parser.add_argument("--quiet-seconds", type=float, default=5, help="victim alone before the attack")
    parser.add_argument("--attack", help="a candidate's name (default: the costliest per request)")
    parser.add_argument("--artifacts", type=Path, help="MNIST_ARTIFACTS_DIR with a champion (default: a new one)")
    parser.add_argument("--max-files", type=int, default=32)
    parser.add_argument("--max-body-mb", type=float, default=10)
    parser.add_argument("--serve-option", action="append", default=[], help="more options for serve (repeatable)")
    parser.add_argument("--train", type=Path, help=argparse.SUPPRESS)  # in a child process: train and exit
    arguments = parser.parse_args()
    if arguments.train:
        return train_champion(arguments.train)
    if not os.environ.get("MNIST_DATA_DIR"):
        raise SystemExit("set MNIST_DATA_DIR to the MNIST folder: serve reads the test digits for its leakage check")
    max_body = int(arguments.max_body_mb * 1_000_000)
    started_at = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    print(f"{started_at}, main at {commit.strip()}. Conditions before: {conditions()}.")
    wall, cpu = reference_cpu()
    print(f"Reference before: ten 1000x1000 float64 matmuls took {1000 * wall:.0f} ms wall, {1000 * cpu:.0f} ms CPU.\n")

    found = candidates()
    chosen = choose_attack(found, arguments.max_files, max_body, arguments.attack)
    image = found[chosen]
    body, content_type = multipart([image] * files_that_fit(image, arguments.max_files, max_body))
    del found
    images = bodies(SUBSET)  # real MNIST test digits as a person sends them: dark on white, 140x140 PNG

    with tempfile.TemporaryDirectory(prefix="serve-overload-") as scratch:
        artifacts = arguments.artifacts or Path(scratch) / "artifacts"
        if not has_champion(artifacts):
            subprocess.run([sys.executable, __file__, "--train", str(artifacts)], check=True)
        port = free_port()
        environment = {**os.environ, "MNIST_ARTIFACTS_DIR": str(artifacts)}
        environment.pop("MNIST_ARTIFACTS_URL", None)
        process = subprocess.Popen(
            [
                CLI,
                "serve",
                "--host",
                HOST,
                "--port",
                str(port),
                "--max-files",
                str(arguments.max_files),
                "--max-body-mb",
                str(arguments.max_body_mb),
                *arguments.serve_option,
            ],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=open(Path(scratch) / "serve.log", "w"),
            start_new_session=True,
        )
        try:
            wait_until_up(port, process)
            print(f"serve (pid {process.pid}) on {HOST}:{port}; {len(body):,}-byte attack requests.")
            quiet: list = []
            victim(port, images, time.monotonic() + 2, 0, [])  # warm-up
            victim(port, images, time.monotonic() + arguments.quiet_seconds, 0, quiet)
            print(summary("Victim alone", quiet))

            service = psutil.Process(process.pid)
            print(f"Service RSS before the attack: {service.memory_info().rss / 2**20:,.0f} MiB.")
            cpu_before = sum(service.cpu_times()[:2])
            statuses = [collections.Counter() for _ in range(arguments.attackers)]
            results: list = []
            until = time.monotonic() + arguments.duration
            interval = 1 / arguments.victim_rate if arguments.victim_rate else 0
            threads = [
                threading.Thread(target=attacker, args=(port, body, content_type, until, counter), daemon=True)
                for counter in statuses
            ]
            with Memory(process.pid) as memory:
                began = time.monotonic()
                for thread in threads:
                    thread.start()
                time.sleep(1)  # the attack under way before the first measured victim request
                victim(port, images, until, interval, results)
                for thread in threads:
                    thread.join(timeout=180)
                attack_seconds = time.monotonic() - began
                cpu_used = sum(service.cpu_times()[:2]) - cpu_before
                alive = process.poll() is None
                try:
                    health = request(port, "GET", "/healthz", timeout=10)[0]
                except OSError as error:
                    health = f"no answer ({type(error).__name__})"
                hwm = memory.high_water_mark() if alive else 0
            attacks = sum(statuses, collections.Counter())
            print(
                summary(
                    f"Victim during the attack ({'back to back' if not interval else f'{arguments.victim_rate:g}/s'})",
                    results,
                )
            )
            victim_503 = sum(1 for _, status in results if status == 503)
            errors = sum(1 for _, status in results if status != 200)
            print(f"Victim errors: {errors} ({victim_503} of them 503).")
            shown = ", ".join(f"{status}: {n:,}" for status, n in sorted(attacks.items(), key=str))
            answered = sum(n for status, n in attacks.items() if status == 200)
            print(
                f"Attackers ({arguments.attackers} connections, {attack_seconds:.0f} s): {shown}; "
                f"{answered * files_that_fit(image, arguments.max_files, max_body) / attack_seconds:.1f} images decoded/s."
            )
            print(
                f"Service: {cpu_used:.1f} CPU s in {attack_seconds:.0f} s ({cpu_used / attack_seconds:.2f} cores); "
                f"peak RSS {memory.peak / 2**20:,.0f} MiB sampled every 100 ms ({memory.samples} samples), "
                f"VmHWM {hwm / 2**20:,.0f} MiB; alive at the end: {alive}; /healthz after: {health}."
            )
        finally:
            stop(process)
    wall, cpu = reference_cpu()
    print(f"Reference after: ten 1000x1000 float64 matmuls took {1000 * wall:.0f} ms wall, {1000 * cpu:.0f} ms CPU.")
    print(f"Conditions after: {conditions()}.")


if __name__ == "__main__":
    main()
