"""Training the final model on every training image, saved into the run's folder."""

from pathlib import Path

from prefect import task
from pydantic import BaseModel

from mnist_pipeline.arrays import ArrayHandle
from mnist_pipeline.config import TrainingConfig
from mnist_pipeline.registry import MODEL_FILE
from mnist_pipeline.tasks.caching import PER_RUN_RESULTS
from mnist_pipeline.tasks.data import ScaledImages
from mnist_pipeline.tasks.training import report_epochs
from mnist_pipeline.tasks.training_slot import training_slot


class TrainedModel(BaseModel):
    """A model trained on every training image, saved as `model_path` (and `h5_path` when asked)."""

    model_path: str
    h5_path: str | None
    history: dict[str, list[float]]
    seconds: float


@task(**PER_RUN_RESULTS)
def train_final_model(
    images: ScaledImages, labels: ArrayHandle, config: TrainingConfig, output_dir: str, h5: bool = False
) -> TrainedModel:
    """A fresh model trained on every training image, as the study's final step, saved into `output_dir`;
    the training waits for the `mnist-training` slot."""
    from mnist_pipeline.training import save_model, train_model  # TensorFlow loads where models train

    with training_slot():
        model, history, seconds = train_model(
            config,
            images.images.open(),
            labels.open(),
            report=report_epochs(config.model, key="training-progress-final"),
        )
    output = Path(output_dir)
    h5_path = save_model(model, output / "final_model.h5") if h5 else None
    return TrainedModel(
        model_path=str(save_model(model, output / MODEL_FILE)),
        h5_path=h5_path and str(h5_path),
        history=history,
        seconds=seconds,
    )
