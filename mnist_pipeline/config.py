"""Training settings, free of TensorFlow so that orchestration code can import them cheaply."""

from pydantic import BaseModel, Field, model_validator

STUDY_EPOCHS = 10
MODEL_EPOCHS = {"improved": 20}  # models that train longer than the study's 10 epochs unless told otherwise


def default_epochs(model: str) -> int:
    return MODEL_EPOCHS.get(model, STUDY_EPOCHS)


class TrainingConfig(BaseModel):
    """The study's settings: SGD(learning_rate, momentum 0.9), 10 epochs of batches of 32.

    `epochs` left out (None) is the model's own number: the study's 10, or more for `improved`.
    """

    model: str = "baseline"
    epochs: int | None = Field(None, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(0.01, gt=0)
    seed: int = 1

    @model_validator(mode="after")
    def _model_epochs(self) -> "TrainingConfig":
        if self.epochs is None:
            self.epochs = default_epochs(self.model)
        return self
