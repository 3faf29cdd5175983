"""Registry tasks: which version a name means, and whether a new version replaces the champion."""

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from mnist_pipeline import files, settings
from mnist_pipeline.preprocessing import ScalingStats
from mnist_pipeline.registry import MODEL_FILE, Registry


class ModelVersion(BaseModel):
    version: str
    path: str
    scaling: ScalingStats


class Promotion(BaseModel):
    version: str
    promoted: bool
    reason: str
    previous_champion: str | None
    output_dir: str


@task(cache_policy=NO_CACHE)
def resolve_version(model_version: str) -> ModelVersion:
    """`champion`, `latest` or `vNNNN` as a version with its model file and scaling statistics."""
    registry = Registry(settings.models_dir())
    version = registry.resolve(model_version)
    metadata = registry.metadata(version)
    return ModelVersion(
        version=version, path=str(registry.path(version) / MODEL_FILE), scaling=ScalingStats(**metadata["scaling"])
    )


@task(cache_policy=NO_CACHE)
def champion_without_metrics_for(test_data: str) -> str | None:
    """The champion, if it has no test metrics on this test data (so it must be evaluated first)."""
    registry = Registry(settings.models_dir())
    champion = registry.champion()
    if champion is None:
        return None
    metrics = registry.metadata(champion).get("test_metrics") or {}
    return None if metrics.get("test_data") == test_data else champion


@task(cache_policy=NO_CACHE)
def promote_if_better(version: str, tolerance: float, output_dir: str) -> Promotion:
    """`version` becomes champion if its test accuracy >= the champion's - tolerance; else it is rejected."""
    promoted, reason, champion = Registry(settings.models_dir()).judge(version, tolerance)
    decision = Promotion(
        version=version, promoted=promoted, reason=reason, previous_champion=champion, output_dir=output_dir
    )
    get_run_logger().info("%s %s: %s", version, "promoted to champion" if promoted else "rejected", reason)
    files.write_json(Path(output_dir) / "promotion.json", decision.model_dump())
    create_markdown_artifact(
        f"# {version}: {'champion' if promoted else 'rejected challenger'}\n\n{reason}.\n\n"
        f"Previous champion: {champion or 'none'}.",
        key="model-promotion",
        description=f"{version} {'promoted' if promoted else 'rejected'}",
    )
    return decision
