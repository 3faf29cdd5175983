"""Load on a running `mnist-pipeline serve`: N concurrent clients, throughput and latency percentiles.

    MNIST_ARTIFACTS_DIR=/tmp/serve-bench mnist-pipeline retrain --model deeper --epochs 1 --limit 6000
    MNIST_ARTIFACTS_DIR=/tmp/serve-bench mnist-pipeline serve --port 8765 &
    .venv/bin/python bench/serve_load.py --url http://127.0.0.1:8765 --clients 1,16 --requests 10000

Each client holds one keep-alive HTTP/1.1 connection and sends `POST /predict` one after the other,
the body a real MNIST test digit as a person sends it (dark on white, 140x140 PNG, 100 different
digits in turn). The client is plain asyncio streams, so that it takes little of the CPU it shares
with the service. Prints a markdown table: clients, requests, errors, predictions/s, p50/p99 ms, and
with `--server-pid` the service's CPU time per request (less sensitive to other load on the machine).
"""

import argparse
import asyncio
import io
import json
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).parent))
from measure import conditions

SUBSET = Path(__file__).parents[1] / "tests" / "data" / "mnist-first-1000"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", default="1,16", help="comma-separated numbers of concurrent clients")
    parser.add_argument("--requests", type=int, default=10_000, help="requests per row")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--data-dir", type=Path, default=SUBSET, help="MNIST folder for the test digits")
    parser.add_argument("--server-pid", type=int, help="the service's process: report its CPU time per request")
    arguments = parser.parse_args()
    images = bodies(arguments.data_dir)
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
        row = asyncio.run(run(arguments.url, clients, arguments.requests, images, arguments.server_pid))
        cpu = f"{row['server_cpu_ms']:.2f}" if arguments.server_pid else ""
        print(
            f"| {row['clients']} | {row['requests']:,} | {row['errors']} | {row['per_second']:,.0f} "
            f"| {row['p50']:.1f} | {row['p99']:.1f} | {cpu} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
