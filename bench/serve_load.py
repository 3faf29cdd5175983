"""Load on a running `mnist-pipeline serve`: N concurrent clients, throughput and latency percentiles.

    MNIST_ARTIFACTS_DIR=/tmp/serve-bench mnist-pipeline retrain --model deeper --epochs 1 --limit 6000
    MNIST_ARTIFACTS_DIR=/tmp/serve-bench mnist-pipeline serve --port 8765 &
    .venv/bin/python bench/serve_load.py --url http://127.0.0.1:8765 --clients 1,16 --requests 10000

Each client holds one keep-alive HTTP/1.1 connection and sends `POST /predict` one after the other,
the body a real MNIST test digit as a person sends it (dark on white, 140x140 PNG, 100 different
digits in turn). The client is plain asyncio streams, so that it takes little of the CPU it shares
with the service. Prints a markdown table: clients, requests, errors, predictions/s, p50/p99 ms, and
with `--server-pid` the service's CPU time per request (less sensitive to other load on the machine).

    MNIST_ARTIFACTS_DIR=/tmp/serve-bench .venv/bin/python bench/serve_load.py --compare-monitoring --rounds 2

starts `serve` itself instead, on the registry of MNIST_ARTIFACTS_DIR, once per round with /metrics and the
prediction log off (`--no-metrics --no-prediction-log`) and once with both on (the defaults), back to back,
and measures each the same way: the cost of monitoring.
"""

import argparse
import asyncio
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).parent))
from measure import conditions

SUBSET = Path(__file__).parents[1] / "tests" / "data" / "mnist-first-1000"
CLI = str(Path(sys.executable).parent / "mnist-pipeline")
MONITORING = {"off": ["--no-metrics", "--no-prediction-log"], "on": []}


def bodies(data_dir: Path, count: int = 100) -> list[bytes]:
    from PIL import Image

    from mnist_pipeline.mnist import read_directory

    encoded = []
    for digit in read_directory(data_dir).test_images[:count]:
        buffer = io.BytesIO()
        Image.fromarray(255 - digit).resize((140, 140), Image.Resampling.BICUBIC).save(buffer, format="PNG")
        encoded.append(buffer.getvalue())
    return encoded


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
    return int(lines[0].split()[1]), await reader.readexactly(length)


async def client(host: str, port: int, images: list[bytes], count: int, offset: int, results: list) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for index in range(count):
            body = images[(offset + index) % len(images)]
            request = (
                f"POST /predict HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: image/png\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            started = time.perf_counter()
            writer.write(request + body)
            status, answer = await read_response(reader)
            elapsed = time.perf_counter() - started
            results.append((elapsed, status == 200 and "digit" in json.loads(answer)))
    finally:
        writer.close()


def cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


async def run(url: str, clients: int, requests: int, images: list[bytes], server_pid: int | None = None) -> dict:
    parts = urlsplit(url)
    server_cpu = cpu_seconds(server_pid)
    results: list[tuple[float, bool]] = []
    per_client = [requests // clients + (i < requests % clients) for i in range(clients)]
    started = time.perf_counter()
    outcomes = await asyncio.gather(
        *(client(parts.hostname, parts.port, images, n, 7 * i, results) for i, n in enumerate(per_client)),
        return_exceptions=True,
    )
    seconds = time.perf_counter() - started
    server_cpu = cpu_seconds(server_pid) - server_cpu
    latencies = sorted(1000 * elapsed for elapsed, _ in results)
    percentiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {
        "clients": clients,
        "requests": len(results),
        "errors": sum(not ok for _, ok in results) + sum(isinstance(o, Exception) for o in outcomes),
        "per_second": len(results) / seconds,
        "p50": percentiles[49],
        "p99": percentiles[98],
        "server_cpu_ms": 1000 * server_cpu / max(1, len(results)),
    }


@contextmanager
def started_service(options: list[str]):
    """`mnist-pipeline serve` with `options` on a free loopback port: (its URL, its pid), stopped on leaving."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [CLI, "serve", "--port", str(port), *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(url + "/healthz", timeout=2).close()
                break
            except OSError:
                time.sleep(0.5)
        yield url, process.pid
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)


def row(label: str, result: dict, with_cpu: bool) -> str:
    cpu = f"{result['server_cpu_ms']:.2f}" if with_cpu else ""
    return (
        f"| {label}{result['clients']} | {result['requests']:,} | {result['errors']} | {result['per_second']:,.0f} "
        f"| {result['p50']:.1f} | {result['p99']:.1f} | {cpu} |"
    )


def compare_monitoring(arguments, images: list[bytes]) -> None:
    print(f"Conditions at start: {conditions()}.\n")
    print(
        "| monitoring | clients | requests | errors | predictions/s | p50 (ms) | p99 (ms) | service CPU per request (ms) |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    for _ in range(arguments.rounds):
        for setting, options in MONITORING.items():
            with started_service(options) as (url, pid):
                asyncio.run(run(url, 4, arguments.warmup, images))
                for clients in map(int, arguments.clients.split(",")):
                    result = asyncio.run(run(url, clients, arguments.requests, images, pid))
                    print(row(f"{setting} | ", result, True), flush=True)
    print(f"\nConditions at the end: {conditions()}.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", default="1,16", help="comma-separated numbers of concurrent clients")
    parser.add_argument("--requests", type=int, default=10_000, help="requests per row")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--data-dir", type=Path, default=SUBSET, help="MNIST folder for the test digits")
    parser.add_argument("--server-pid", type=int, help="the service's process: report its CPU time per request")
    parser.add_argument(
        "--compare-monitoring",
        action="store_true",
        help="start serve itself, with /metrics and the prediction log off and then on, and measure both",
    )
    parser.add_argument("--rounds", type=int, default=1, help="with --compare-monitoring: off/on pairs")
    arguments = parser.parse_args()
    images = bodies(arguments.data_dir)
    if arguments.compare_monitoring:
        return compare_monitoring(arguments, images)
    with urllib.request.urlopen(arguments.url + "/healthz", timeout=10) as response:
        health = json.loads(response.read())
    model = f"{health['version']} ({health['model']}, test accuracy {health['test_accuracy']})"
    asyncio.run(run(arguments.url, 4, arguments.warmup, images))
    print(f"Model {model}. Conditions: {conditions()}.\n")
    print(
        "| clients | requests | errors | predictions/s | p50 (ms) | p99 (ms) | service CPU per request (ms) |\n"
        "|---|---|---|---|---|---|---|"
    )
    for clients in map(int, arguments.clients.split(",")):
        result = asyncio.run(run(arguments.url, clients, arguments.requests, images, arguments.server_pid))
        print(row("", result, bool(arguments.server_pid)), flush=True)


if __name__ == "__main__":
    main()
