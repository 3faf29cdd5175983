"""Every path the pipeline reads or writes is decided here, from environment settings."""

import itertools
import os
from datetime import UTC, datetime
from pathlib import Path

from fsspec.core import split_protocol

from mnist_pipeline.errors import PipelineError, naming_the_setting

DATA_DIR_VARIABLE = "MNIST_DATA_DIR"
ARTIFACTS_DIR_VARIABLE = "MNIST_ARTIFACTS_DIR"
CACHE_URL_VARIABLE = "MNIST_CACHE_URL"
ARTIFACTS_URL_VARIABLE = "MNIST_ARTIFACTS_URL"
LOCAL_PROTOCOLS = (None, "file", "local")


def data_dir(override: str | os.PathLike | None = None) -> Path | None:
    """The local MNIST directory: `override`, else $MNIST_DATA_DIR, else None (download)."""
    value = override or os.environ.get(DATA_DIR_VARIABLE)
    return Path(value).expanduser().resolve() if value else None


def artifacts_dir() -> Path:
    return Path(os.environ.get(ARTIFACTS_DIR_VARIABLE) or "artifacts").expanduser().resolve()


def _location(value: str) -> str:
    """A local path as an absolute one, a remote URL without its trailing slash."""
    protocol, path = split_protocol(value)
    if protocol in LOCAL_PROTOCOLS:
        return str(Path(path).expanduser().resolve())
    return value.rstrip("/")


def artifacts_url() -> str:
    """The shared root: what every machine must see the same (`cache/`, `models/`, `data/`, `results/`).

    $MNIST_ARTIFACTS_URL: a local path, or an fsspec URL every machine reaches (s3://bucket/mnist with s3fs,
    gcs://... with gcsfs); default: the local artifacts folder, so one machine works as it always did.
    """
    value = os.environ.get(ARTIFACTS_URL_VARIABLE)
    return _location(value) if value else str(artifacts_dir())


def shared_location(name: str) -> str | Path:
    """`name` under the shared root: a Path when local, else a URL."""
    root = artifacts_url()
    return f"{root}/{name}" if is_remote(root) else Path(root) / name


def cache_url() -> str:
    """Where content-addressed intermediate arrays (`<sha256>.npy`) are saved.

    $MNIST_CACHE_URL: a local path, or an fsspec URL that every worker can reach (s3://bucket/prefix
    with s3fs installed, gcs://... with gcsfs, ...); a local one is returned as an absolute path.
    Default: `cache/` under the shared root.
    """
    value = os.environ.get(CACHE_URL_VARIABLE)
    return _location(value) if value else str(shared_location("cache"))


def cache_setting() -> str:
    """The setting that decides `cache_url()`, for messages about it."""
    if os.environ.get(CACHE_URL_VARIABLE):
        return CACHE_URL_VARIABLE
    return ARTIFACTS_URL_VARIABLE if os.environ.get(ARTIFACTS_URL_VARIABLE) else ARTIFACTS_DIR_VARIABLE


def results_url() -> str | None:
    """Where Prefect keeps the result records of cached tasks: `results/` under $MNIST_ARTIFACTS_URL when it is
    set, so a fold finished on one machine is Cached on another; else None (Prefect's own local storage)."""
    return str(shared_location("results")) if os.environ.get(ARTIFACTS_URL_VARIABLE) else None


def is_remote(location: str) -> bool:
    """Whether `location` is a URL of a filesystem other than the local one."""
    return split_protocol(location)[0] not in LOCAL_PROTOCOLS


def fetch_dir() -> Path:
    """Local copies of arrays fetched from a remote cache URL, named by their digest."""
    return artifacts_dir() / "fetched"


def models_location() -> str | Path:
    """The model registry: `v0001/`, ... and the champion's promotions."""
    return shared_location("models")


def members_dir() -> Path:
    """Trained ensemble members, named by their digest: kept for runs that find them cached."""
    return artifacts_dir() / "members"


def data_store_location() -> str | Path:
    """The labeled-data store: examples from the service's corrections and imported folders."""
    return shared_location("data")


def test_digests_dir() -> Path:
    """The digests of MNIST's test images that the leakage check refuses, one file per test set and code."""
    return artifacts_dir() / "test-digests"


def download_dir() -> Path:
    """Where the online copy of MNIST is kept: the user's cache, shared across projects."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "mnist-pipeline"


def run_dir(flow_name: str, output: str | os.PathLike | None = None, run_id: str | None = None) -> Path:
    """`output`, created if missing; else `artifacts/runs/<flow>-<run_id>/` when the run's id is given (the
    same folder when a suspended run starts again); else a new folder `artifacts/runs/<flow>-<timestamp>[-<n>]/`,
    created here so that two runs started in the same second never share one."""
    if output or run_id:
        path = Path(output or artifacts_dir() / "runs" / f"{flow_name}-{run_id}").expanduser().resolve()
        with naming_the_setting("output_dir", path, "cannot create the folder", "pass a writable folder"):
            path.mkdir(parents=True, exist_ok=True)
        return path
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    runs = artifacts_dir() / "runs"
    with naming_the_setting(
        ARTIFACTS_DIR_VARIABLE, artifacts_dir(), "cannot create a run folder in it", "set it to a writable folder"
    ):
        runs.mkdir(parents=True, exist_ok=True)
        for suffix in itertools.count(1):
            candidate = runs / (f"{flow_name}-{stamp}" if suffix == 1 else f"{flow_name}-{stamp}-{suffix}")
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            return candidate


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


MAX_IMAGE_PIXELS_VARIABLE = "MNIST_MAX_IMAGE_PIXELS"
DEFAULT_MAX_IMAGE_PIXELS = 4_000_000  # a digit needs far less; a larger JPEG is decoded reduced to fit


def max_image_pixels() -> int:
    """The most pixels an image is decoded at: $MNIST_MAX_IMAGE_PIXELS, else DEFAULT_MAX_IMAGE_PIXELS."""
    value = os.environ.get(MAX_IMAGE_PIXELS_VARIABLE, "").strip()
    if not value:
        return DEFAULT_MAX_IMAGE_PIXELS
    digits = value.replace("_", "")
    if not digits.isdigit() or int(digits) < 784:
        raise PipelineError(
            f"{MAX_IMAGE_PIXELS_VARIABLE} {value[:20]!r}: not a number of pixels of at least 784 (28x28); "
            f"set it to a whole number such as {DEFAULT_MAX_IMAGE_PIXELS}, or unset it"
        )
    return int(digits)
