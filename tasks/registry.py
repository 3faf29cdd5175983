"""Every write to the model registry goes through a task in this file: register a version, record its test
metrics, judge a challenger (promote or reject it). Reads resolve which version a name means."""

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

import mnist_pipeline
from mnist_pipeline.approval import Review
from mnist_pipeline.gate import Status, Verdict
from mnist_pipeline.monitoring.reference import model_reference
from mnist_pipeline.orchestration import stores
from mnist_pipeline.orchestration.caching import PER_RUN_RESULTS
from mnist_pipeline.preprocessing import ScalingStats
from mnist_pipeline.registry import REFERENCE_FILE
from mnist_pipeline.tasks.data import MnistArrays
from mnist_pipeline.tasks.evaluation import TestEvaluation
from mnist_pipeline.tasks.final_model import TrainedModel
from mnist_pipeline.training_request import TrainingRequest


class ModelVersion(BaseModel):
    version: str
    path: str
    scaling: ScalingStats


class Promotion(BaseModel):
    version: str | None  # None: nothing was trained (no new data)
    promoted: bool
    reason: str
    previous_champion: str | None
    output_dir: str
    users_digits: dict[str, float | int | None] | None = None  # examples, challenger and champion accuracy


def git_revision() -> str:
    """The checkout's commit, or the package version outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10
        )
    except OSError:
        return mnist_pipeline.__version__
    return result.stdout.strip() if result.returncode == 0 else mnist_pipeline.__version__


def _model_version(version: str) -> ModelVersion:
    registry = stores.registry()
    return ModelVersion(
        version=version,
        path=str(registry.model_file(version)),
        scaling=ScalingStats(**registry.metadata(version)["scaling"]),
    )


@task(cache_policy=NO_CACHE)
def resolve_version(model_version: str) -> ModelVersion:
    """`champion`, `latest` or `vNNNN` as a version with its model file and scaling statistics."""
    return _model_version(stores.registry().resolve(model_version))


@task(**PER_RUN_RESULTS)  # a run started again after its suspension registers nothing twice
def register_version(
    trained: TrainedModel,
    raw: MnistArrays,
    scaling: ScalingStats,
    parameters: dict[str, Any],
    lineage: dict[str, Any] | None = None,
) -> ModelVersion:
    """The trained model's files, with what evaluate and predict need to know and the monitor's reference (its
    answers on the reference half of MNIST's test set), as the registry's next version; `lineage`: the new
    examples it was trained on (`StoreExamples.lineage`)."""
    metadata = {
        "parameters": parameters,
        "data": {
            "dataset": raw.dataset,
            "train_images": raw.train_images.sha256,
            "train_labels": raw.train_labels.sha256,
            **(lineage or {}),
        },
        "scaling": scaling._asdict(),
        "code_version": git_revision(),
        "training_seconds": trained.seconds,
        "history": trained.history,
        "created_at": datetime.now(UTC).isoformat(),
        "status": Status.CHALLENGER,
    }
    registry = stores.registry()
    with registry.staging() as staged:
        for path in filter(None, (trained.model_path, trained.h5_path)):
            shutil.copyfile(path, staged / Path(path).name)
        reference = model_reference(trained.model_path, scaling, raw.test_images.open(), raw.test_labels.open())
        (staged / REFERENCE_FILE).write_bytes(reference.to_bytes())
        version = registry.publish(staged, metadata)
    get_run_logger().info("Registered %s as model version %s", parameters["model"], version)
    return _model_version(version)


@task(cache_policy=NO_CACHE)
def record_test_metrics(version: str, evaluation: TestEvaluation, test_data: str, output_dir: str) -> None:
    """The version's test accuracy and loss, and on which test data: what promotion compares."""
    stores.registry().update_metadata(
        version,
        test_metrics={
            "accuracy": evaluation.accuracy,
            "loss": evaluation.loss,
            "test_data": test_data,
            "output_dir": output_dir,
        },
    )


@task(cache_policy=NO_CACHE)
def champion_without_metrics_for(test_data: str) -> str | None:
    """The champion, if it has no test metrics on this test data (so it must be evaluated first)."""
    registry = stores.registry()
    champion = registry.champion()
    if champion is None:
        return None
    metrics = registry.metadata(champion).get("test_metrics") or {}
    return None if metrics.get("test_data") == test_data else champion


@task(cache_policy=NO_CACHE)
def read_champion() -> str | None:
    return stores.registry().champion()


@task(cache_policy=NO_CACHE)
def champion_trained_alike(request: TrainingRequest, data: dict[str, str]) -> str | None:
    """The champion, if it was trained as `request` trains, on this data; else None."""
    registry = stores.registry()
    champion = registry.champion()
    if champion is None:
        return None
    metadata = registry.metadata(champion)
    same_data = all(metadata["data"].get(name) == value for name, value in data.items())
    return champion if same_data and request.same_as(metadata["parameters"]) else None


GateVerdict = Verdict  # the name publishing knows it by


@task(cache_policy=NO_CACHE)
def gate_verdict(version: str, tolerance: float, min_accuracy: float) -> Verdict:
    """Whether `version` passes the gate (floor and champion), before anyone approves it."""
    return stores.registry().verdict(version, tolerance, min_accuracy)


@task(cache_policy=NO_CACHE)
def request_approval(version: str, flow_run_id: str, timeout_seconds: int) -> None:
    """Mark `version` as waiting for a person until the run's timeout; after it, the registry reads
    the request as rejected with "no decision"."""
    deadline = datetime.now(UTC).timestamp() + timeout_seconds
    stores.registry().update_metadata(
        version,
        status=Status.AWAITING_APPROVAL,
        approval_request={"flow_run_id": flow_run_id, "until": datetime.fromtimestamp(deadline, UTC).isoformat()},
    )


@task(cache_policy=NO_CACHE)
def judge_version(
    version: str,
    tolerance: float,
    min_accuracy: float,
    output_dir: str,
    users_digits: dict[str, float | int | None] | None = None,
    review: Review | None = None,
) -> Promotion:
    """`version` becomes champion if its test accuracy >= min_accuracy and >= the champion's - tolerance (and
    `review`, if it waited for one, approves it); else it is rejected. `users_digits` (both models' accuracy on
    the held-out new examples) is reported."""
    promoted, reason, champion = stores.registry().judge(version, tolerance, min_accuracy, review)
    get_run_logger().info("%s %s: %s", version, "promoted to champion" if promoted else "rejected", reason)
    return Promotion(
        version=version,
        promoted=promoted,
        reason=reason,
        previous_champion=champion,
        output_dir=output_dir,
        users_digits=users_digits,
    )
