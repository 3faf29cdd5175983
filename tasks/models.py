"""Training the final model on all training images and registering it as a new version."""

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mnist_pipeline.tasks.data import MnistArrays, ScaledImages
from mnist_pipeline.tasks.training import log_epoch
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

import mnist_pipeline
from mnist_pipeline import files, reports, settings
from mnist_pipeline.arrays import ArrayHandle
from mnist_pipeline.config import TrainingConfig
from mnist_pipeline.registry import MODEL_FILE, Registry


class TrainedModel(BaseModel, arbitrary_types_allowed=True):
    model: Any  # a keras.Model, handed to register_model in the same process
    history: dict[str, list[float]]
    seconds: float


class FinalizeSummary(BaseModel):
    version: str
    model_path: str
    output_dir: str
    seconds: float


@task(cache_policy=NO_CACHE)
def train_final_model(images: ScaledImages, labels: ArrayHandle, config: TrainingConfig) -> TrainedModel:
    """A fresh model trained on every training image, as the study's final step."""
    from mnist_pipeline.training import train_model

    model, history, seconds = train_model(config, images.images.open(), labels.open(), report=log_epoch(config.model))
    return TrainedModel(model=model, history=history, seconds=seconds)


def git_revision() -> str:
    """The checkout's commit, or the package version outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10
        )
    except OSError:
        return mnist_pipeline.__version__
    return result.stdout.strip() if result.returncode == 0 else mnist_pipeline.__version__


@task(cache_policy=NO_CACHE)
def register_model(
    trained: TrainedModel, raw: MnistArrays, images: ScaledImages, parameters: dict[str, Any], h5: bool, output_dir: str
) -> FinalizeSummary:
    """Save the model as the registry's next version, with what evaluate and predict need to know."""
    registry = Registry(settings.models_dir())
    metadata = {
        "parameters": parameters,
        "data": {
            "dataset": raw.dataset,
            "train_images": raw.train_images.sha256,
            "train_labels": raw.train_labels.sha256,
        },
        "scaling": images.stats._asdict(),
        "code_version": git_revision(),
        "training_seconds": trained.seconds,
        "history": trained.history,
        "created_at": datetime.now(UTC).isoformat(),
        "status": "challenger",
    }
    with registry.staging() as staged:
        trained.model.save(staged / MODEL_FILE)
        if h5:
            trained.model.save(staged / "final_model.h5")
        version = registry.publish(staged, metadata)
    model_path = registry.path(version) / MODEL_FILE
    get_run_logger().info(
        "Saved %s as model version %s (%.0f s of training)", parameters["model"], version, trained.seconds
    )

    output = Path(output_dir)
    curves = reports.png_bytes(reports.learning_curves([trained.history]))
    files.write_bytes(output / "learning_curves.png", curves)
    summary = FinalizeSummary(
        version=version, model_path=str(model_path), output_dir=str(output), seconds=trained.seconds
    )
    files.write_json(output / "finalize.json", {**summary.model_dump(), "metadata": {**metadata, "version": version}})
    create_markdown_artifact(
        f"# Model version {version}\n\n`{parameters['model']}` trained on {images.images.shape[0]:,} images in "
        f"{trained.seconds:.0f} s; saved to `{model_path}`.\n\n"
        + reports.markdown_image(curves, "training loss and accuracy"),
        key="finalized-model",
        description=f"model version {version}",
    )
    return summary
