"""The subcommands that run no flow: `serve`, `promote`, `data` and `add-data`.

TensorFlow is imported only by `serve`, when it loads a model.
"""

import ipaddress
import json
import logging
import os
import sys
from pathlib import Path

from mnist_pipeline import settings
from mnist_pipeline.errors import PipelineError

FEEDBACK_TOKEN_VARIABLE = "MNIST_FEEDBACK_TOKEN"
FEEDBACK_TOKEN_FILE_VARIABLE = "MNIST_FEEDBACK_TOKEN_FILE"


COMMANDS = ("serve", "promote", "data", "add-data")


class ServeOptionError(PipelineError):
    """`serve` options that cannot work, or that would expose /feedback to anyone without being told to."""


def add_subcommands(subcommands) -> None:
    serve = subcommands.add_parser("serve", help="serve the champion over HTTP: predictions, a drawing page, feedback")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, loopback only)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve.add_argument(
        "--model-version",
        default="champion",
        help="champion (default: follows promotions live), latest, or a fixed version vNNNN",
    )
    serve.add_argument(
        "--feedback-token",
        default=os.environ.get(FEEDBACK_TOKEN_VARIABLE),
        help=f"token POST /feedback requires (default: ${FEEDBACK_TOKEN_VARIABLE}); needed off loopback",
    )
    serve.add_argument(
        "--feedback-token-file",
        type=Path,
        default=os.environ.get(FEEDBACK_TOKEN_FILE_VARIABLE),
        metavar="PATH",
        help=f"read the token from this file instead (default: ${FEEDBACK_TOKEN_FILE_VARIABLE}): kept out of `ps`",
    )
    serve.add_argument(
        "--open-feedback",
        action="store_true",
        help="off loopback without a token: let anyone who reaches the service add training data",
    )
    serve.add_argument("--max-body-mb", type=float, default=10, help="largest request body in MB (default: 10)")
    serve.add_argument("--max-files", type=int, default=32, help="most images in one request (default: 32)")
    serve.add_argument(
        "--max-concurrent",
        type=int,
        default=32,
        help="most requests in flight; past it 503 with Retry-After (default: 32)",
    )
    serve.add_argument(
        "--allowed-hosts",
        default="",
        metavar="NAMES",
        help="comma-separated host names clients may reach the service by, besides the loopback names and "
        "--host (against DNS rebinding; * allows any)",
    )
    serve.add_argument("--poll-seconds", type=float, default=1.0, help="how often the registry is checked")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument(
        "--data-event-every",
        type=int,
        default=100,
        help="send the event mnist.data.arrived after this many new corrections (default: 100; needs PREFECT_API_URL)",
    )
    serve.add_argument(
        "--feedback-rate-per-minute",
        type=float,
        default=30,
        help="most corrections one client (address) may send a minute; past it 429 with Retry-After (default: 30)",
    )
    serve.add_argument(
        "--feedback-daily-quota",
        type=int,
        default=500,
        help="most corrections one client may send a UTC day (default: 500)",
    )
    serve.add_argument("--no-metrics", dest="metrics", action="store_false", help="serve no /metrics")
    serve.add_argument(
        "--no-prediction-log",
        dest="prediction_log",
        action="store_false",
        help="keep no log of answers and of the labels users give them (predictions/ in the shared store)",
    )
    serve.add_argument(
        "--log-sample", type=float, default=1.0, help="fraction of answers logged, 0-1 (default: 1.0: all)"
    )
    serve.add_argument(
        "--log-retention-days",
        type=float,
        default=30.0,
        help="logged answers and labels older than this are deleted (default: 30)",
    )
    serve.add_argument(
        "--log-flush-seconds", type=float, default=5.0, help="the log is written at least this often (default: 5)"
    )

    promote = subcommands.add_parser("promote", help="make a version the champion by hand (or roll back)")
    promote.add_argument("version", metavar="VERSION", help="vNNNN or latest")
    promote.add_argument("--reason", required=True, help="why, recorded in the version's metadata")

    data = subcommands.add_parser("data", help="what the labeled-data store holds")
    data.add_argument("--json", action="store_true", help="print JSON")

    add_data = subcommands.add_parser("add-data", help="import a folder of labeled images (labels.csv: file,label)")
    add_data.add_argument("folder", metavar="DIR", type=Path, help="folder with labels.csv and the images it names")


def run(command: str, arguments: dict, as_json: bool) -> int:
    if command == "data":
        return data(as_json)
    return {"serve": serve, "promote": promote, "add-data": add_data}[command](**arguments)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token_file(path: Path) -> str:
    """The token in `path` (surrounding whitespace dropped), or ServeOptionError in one line."""
    try:
        token = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
        raise ServeOptionError(f"--feedback-token-file {path}: cannot read it ({reason})") from None
    if not token:
        raise ServeOptionError(f"--feedback-token-file {path} is empty: write the token in it")
    if len(token.split()) > 1:
        raise ServeOptionError(f"--feedback-token-file {path} holds more than one word: write only the token in it")
    return token


def allowed_host_names(host: str, allowed_hosts: str) -> list[str]:
    """Loopback names, --host unless it is a wildcard address, and the names given."""
    from mnist_pipeline.serving.security import LOOPBACK_NAMES

    bound = [] if host in ("0.0.0.0", "::", "") else [host]
    return [*LOOPBACK_NAMES, *bound, *(name.strip() for name in allowed_hosts.split(",") if name.strip())]


def serve(
    host: str,
    port: int,
    model_version: str,
    feedback_token: str | None,
    feedback_token_file: Path | None,
    open_feedback: bool,
    max_body_mb: float,
    max_files: int,
    max_concurrent: int,
    allowed_hosts: str,
    poll_seconds: float,
    access_log: bool,
    data_event_every: int,
    metrics: bool = True,
    prediction_log: bool = True,
    log_sample: float = 1.0,
    log_retention_days: float = 30.0,
    log_flush_seconds: float = 5.0,
    feedback_rate_per_minute: float = 30,
    feedback_daily_quota: int = 500,
) -> int:
    if feedback_token_file is not None:
        if feedback_token:
            raise ServeOptionError(
                f"a feedback token from both --feedback-token (or ${FEEDBACK_TOKEN_VARIABLE}) and "
                f"--feedback-token-file (or ${FEEDBACK_TOKEN_FILE_VARIABLE}): pass one"
            )
        feedback_token = read_token_file(Path(feedback_token_file))
    if not is_loopback(host) and not feedback_token and not open_feedback:
        raise ServeOptionError(
            f"--host {host} lets other machines reach the service, and POST /feedback writes training data: "
            f"pass --feedback-token TOKEN (or set {FEEDBACK_TOKEN_VARIABLE}), or --open-feedback to let anyone"
        )
    if data_event_every < 1:
        raise ServeOptionError(f"--data-event-every must be at least 1, got {data_event_every}")
    if max_body_mb <= 0:
        raise ServeOptionError(f"--max-body-mb must be positive, got {max_body_mb}")
    if not 0 <= log_sample <= 1:
        raise ServeOptionError(f"--log-sample must be from 0 to 1 (a fraction of the answers), got {log_sample}")
    for option, number in (("--log-retention-days", log_retention_days), ("--log-flush-seconds", log_flush_seconds)):
        if number <= 0:
            raise ServeOptionError(f"{option} must be positive, got {number}")
    if feedback_rate_per_minute <= 0:
        raise ServeOptionError(f"--feedback-rate-per-minute must be positive, got {feedback_rate_per_minute:g}")
    counts = (("--max-files", max_files), ("--max-concurrent", max_concurrent))
    for option, value in (*counts, ("--feedback-daily-quota", feedback_daily_quota)):
        if value < 1:
            raise ServeOptionError(f"{option} must be at least 1, got {value}")
    import uvicorn

    from mnist_pipeline.data_checks import mnist_test_digests
    from mnist_pipeline.datastore import DataStore
    from mnist_pipeline.registry import default_registry
    from mnist_pipeline.serving.app import create_app
    from mnist_pipeline.serving.model_slot import ModelSlot
    from mnist_pipeline.serving.prediction_logger import LogSettings
    from mnist_pipeline.serving.quota import FeedbackQuota

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    registry = default_registry()
    if model_version not in ("champion", "latest"):
        registry.resolve(model_version)  # a bad name fails here, in one line
    slot = ModelSlot(registry, model_version, poll_seconds)
    store = DataStore(settings.data_store_location(), forbidden=mnist_test_digests())
    app = create_app(
        slot,
        store,
        int(max_body_mb * 1_000_000),
        feedback_token or None,
        data_event_every,
        max_files=max_files,
        max_concurrent=max_concurrent,
        allowed_hosts=allowed_host_names(host, allowed_hosts),
        feedback_quota=FeedbackQuota(feedback_rate_per_minute, feedback_daily_quota),
        metrics=metrics,
        prediction_log=LogSettings(
            settings.artifacts_url(), log_sample, flush_seconds=log_flush_seconds, retention_days=log_retention_days
        )
        if prediction_log
        else None,
    )
    uvicorn.run(app, host=host, port=port, access_log=access_log, log_level="info")
    return 0


def promote(version: str, reason: str) -> int:
    from mnist_pipeline.registry import default_registry

    registry = default_registry()
    version = registry.resolve(version)
    previous = registry.promote(version, reason)
    print(f"{version} is the champion (before: {previous or 'none'}): {reason}")
    return 0


def data(as_json: bool) -> int:
    from mnist_pipeline.datastore import DataStore

    summary = DataStore(settings.data_store_location()).summary()
    if as_json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{summary['examples']} examples in {summary['store']} (digest {summary['digest'][:16]})")
    print("by label:  " + ", ".join(f"{label}: {count}" for label, count in summary["by_label"].items()))
    print("by source: " + ", ".join(f"{source}: {count}" for source, count in summary["by_source"].items()))
    for conflict in summary["conflicts"]:
        print(f"conflict: image {conflict['sha256'][:16]} labeled {' and '.join(map(str, conflict['labels']))}")
    return 0


def add_data(folder: Path) -> int:
    from mnist_pipeline.data_checks import mnist_test_digests
    from mnist_pipeline.data_import import import_folder
    from mnist_pipeline.datastore import DataStore

    store = DataStore(settings.data_store_location(), forbidden=mnist_test_digests())
    report = import_folder(store, folder)
    for error in report["errors"]:
        print(f"mnist-pipeline add-data: error: {error}", file=sys.stderr)
    outcomes = report["outcomes"]
    print(
        f"{folder}: {outcomes['added']} added, {outcomes['duplicate']} already stored, "
        f"{outcomes['conflict']} conflicting with a stored label, {len(report['errors'])} failed"
    )
    if outcomes["added"]:
        from mnist_pipeline.orchestration.events import emit_data_arrived

        if emit_data_arrived(store.summary(), outcomes["added"], f"import:{folder.resolve().name}"):
            print("sent the event mnist.data.arrived (a retrain deployment with its trigger starts a run)")
    return 1 if report["errors"] else 0
