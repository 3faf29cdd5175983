"""Training settings, free of TensorFlow so that orchestration code can import them cheaply."""

from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

SingleModelName = Literal["baseline", "batchnorm", "deeper", "improved"]
MODEL_NAMES: tuple[str, ...] = SingleModelName.__args__  # the models a factory builds
ENSEMBLE = "ensemble"  # the average of several single models, each trained on every training image
ModelName = Literal[SingleModelName, "ensemble"]
STUDY_SETTINGS = {"epochs": 10, "learning_rate": 0.01}
MODEL_SETTINGS = {"improved": {"epochs": 15, "learning_rate": 0.05}}  # models trained otherwise than the study's
# Trained with the learning rate falling from its start to zero along a cosine; the study's keep it constant.
COSINE_DECAY = frozenset({"improved"})


def default_settings(model: str) -> dict[str, Any]:
    """The epochs and learning rate `model` trains with unless told otherwise."""
    return {**STUDY_SETTINGS, **MODEL_SETTINGS.get(model, {})}


class TrainingConfig(BaseModel):
    """The study's settings: SGD(learning_rate, momentum 0.9), 10 epochs of batches of 32.

    `epochs` and `learning_rate` left out (None) are the model's own: the study's, or those of `improved`.
    """

    model: str = "baseline"
    epochs: int | None = Field(None, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float | None = Field(None, gt=0)
    seed: int = 1

    @model_validator(mode="after")
    def _model_settings(self) -> "TrainingConfig":
        for name, value in default_settings(self.model).items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        return self
