"""The final model, trained on every training image (or assembled from ensemble members), saved into the run's
folder."""

from pathlib import Path

from prefect import get_run_logger, task
from pydantic import BaseModel

from mnist_pipeline.arrays import ArrayHandle
from mnist_pipeline.config import TrainingConfig
from mnist_pipeline.orchestration.caching import PER_RUN_RESULTS
from mnist_pipeline.orchestration.training_slot import training_slot
from mnist_pipeline.registry import MODEL_FILE
from mnist_pipeline.tasks.data import ScaledImages
from mnist_pipeline.tasks.members import TrainedMember
from mnist_pipeline.tasks.training import report_epochs


class TrainedModel(BaseModel):
    """A model trained on every training image, saved as `model_path` (and `h5_path` when asked)."""

    model_path: str
    h5_path: str | None
    history: dict[str, list[float]]
    seconds: float  # of training; an ensemble's: its members', summed


@task(**PER_RUN_RESULTS)
def train_final_model(
    images: ScaledImages, labels: ArrayHandle, config: TrainingConfig, output_dir: str, h5: bool = False
) -> TrainedModel:
    """A fresh model trained on every training image, as the study's final step, saved into `output_dir`;
    the training waits for the `mnist-training` slot."""
    from mnist_pipeline.training import train_model  # TensorFlow loads where models train

    with training_slot():
        model, history, seconds = train_model(
            config,
            images.images.open(),
            labels.open(),
            report=report_epochs(config.model, key="training-progress-final"),
        )
    return saved_final_model(model, history, seconds, Path(output_dir), h5)


@task(**PER_RUN_RESULTS)
def assemble_ensemble(members: list[TrainedMember], output_dir: str, h5: bool = False) -> TrainedModel:
    """One model that averages the members' softmax, saved into `output_dir`; its history is the members' mean."""
    from mnist_pipeline.ensemble import average_models, mean_history
    from mnist_pipeline.models import load_checked_model

    members = sorted(members, key=lambda member: member.member)
    for member in members:
        member.model.verify()
        get_run_logger().info(
            "member %d: trained in %.0f s by %s, saved as %s",
            member.member,
            member.seconds,
            member.worker,
            member.model.path,
        )
    model = average_models([load_checked_model(Path(member.model.path)) for member in members])
    histories = [member.history for member in members]
    seconds = sum(member.seconds for member in members)
    return saved_final_model(model, mean_history(histories), seconds, Path(output_dir), h5)


def saved_final_model(model, history: dict[str, list[float]], seconds: float, output: Path, h5: bool) -> TrainedModel:
    """`model` saved as the run's MODEL_FILE (and final_model.h5 when asked)."""
    from mnist_pipeline.training import save_model

    h5_path = save_model(model, output / "final_model.h5") if h5 else None
    return TrainedModel(
        model_path=str(save_model(model, output / MODEL_FILE)),
        h5_path=h5_path and str(h5_path),
        history=history,
        seconds=seconds,
    )
