"""Training settings, free of TensorFlow so that orchestration code can import them cheaply."""

from pydantic import BaseModel, Field


class TrainingConfig(BaseModel):
    """The study's settings: SGD(learning_rate, momentum 0.9), 10 epochs of batches of 32."""

    model: str = "baseline"
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(0.01, gt=0)
    seed: int = 1
