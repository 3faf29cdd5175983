"""Helpers for the benchmarks: run a command and measure its wall time, CPU time and the peak RSS
of every process in its tree; a Prefect server shared by the runs; the machine's conditions."""

import ctypes
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


@dataclass
class Measured:
    wall: float
    cpu: float  # user + system seconds of the whole process tree
    stdout: str
    peak_rss: dict[int, tuple[str, int]] = field(default_factory=dict)  # pid -> (role, bytes)

    def peaks(self, role: str) -> list[int]:
        return sorted((rss for name, rss in self.peak_rss.values() if name == role), reverse=True)


def role(process: psutil.Process) -> str:
    command = " ".join(process.cmdline())
    if "spawn_main" in command:
        return "worker"
    if "multiprocessing.forkserver" in command:  # the forkserver's workers are forks of it, with its command line
        parent = process.parent()
        return "worker" if parent and "multiprocessing.forkserver" in " ".join(parent.cmdline()) else "forkserver"
    return "helper" if "resource_tracker" in command else "main"


def high_water_mark(pid: int) -> int:
    """VmHWM: the peak resident set size of a live process, in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def reap_left_behind(pids: list[int], timeout: float = 30) -> None:
    """Wait for the processes a command left behind (a forkserver ends after the process that started it),
    adopted by this one as their subreaper, so that their CPU time counts among its children's."""
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    break
            except ChildProcessError:  # not adopted: reaped by its own parent, which was in the tree
                break
            time.sleep(0.05)


def run_measured(command: list[str], env: dict[str, str] | None = None, timeout: float = 3600) -> Measured:
    """Run `command` to completion; raise with its output if it fails."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    peaks: dict[int, tuple[str, int]] = {}
    done = threading.Event()

    def sample() -> None:
        root = psutil.Process(process.pid)
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                tree = []
            for member in tree:
                try:
                    peaks[member.pid] = (
                        role(member),
                        max(peaks.get(member.pid, ("", 0))[1], high_water_mark(member.pid)),
                    )
                except (psutil.Error, OSError):
                    pass
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = process.communicate(timeout=timeout)
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    reap_left_behind([pid for pid in peaks if pid != process.pid])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{stdout[-5000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Measured(wall, cpu, stdout, peaks)


@contextmanager
def prefect_server() -> Iterator[dict[str, str]]:
    """A Prefect server started once for all the runs (as in production); yields the environment."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home = tempfile.mkdtemp(prefix="bench-prefect-")
    env = {
        **os.environ,
        "PREFECT_HOME": home,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
    }
    prefect = str(Path(sys.executable).with_name("prefect"))
    with open(Path(home) / "server.log", "w") as log:
        server = subprocess.Popen(
            [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{env['PREFECT_API_URL']}/health", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"Prefect server did not start; see {home}/server.log") from None
                time.sleep(0.5)
        yield env
    finally:
        server.terminate()
        server.wait(timeout=30)


def conditions() -> str:
    """One line on the machine and how busy it is (other users' processes make timings noisy)."""
    import platform

    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    cores = len(os.sched_getaffinity(0))
    return f"{platform.processor() or platform.machine()}, {cores} cores, load average {load} (1, 5, 15 min)"


def matmul_reference(size: int = 1024, clock=time.process_time) -> float:
    """Seconds (by `clock`) of a fixed float64 numpy matmul, best of 5: this machine's speed, measured in the same
    run as a figure so that a reader can tell a slow day from a regression."""
    import numpy as np

    matrix = np.random.default_rng(0).random((size, size))
    best = float("inf")
    for _ in range(5):
        start = clock()
        matrix @ matrix
        best = min(best, clock() - start)
    return best


def megabytes(count: int) -> str:
    return f"{count / 2**20:.0f} MB"
