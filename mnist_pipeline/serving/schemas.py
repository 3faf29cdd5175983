"""The JSON the service answers with, as pydantic models: checked on the way out and shown in /docs."""

from typing import Literal

from pydantic import BaseModel, Field


class Prediction(BaseModel):
    digit: int = Field(ge=0, le=9, description="the most probable digit")
    probabilities: list[float] = Field(min_length=10, max_length=10, description="of each digit 0-9, rounded to 6")
    version: str = Field(description="the registry version that answered, e.g. v0003")
    prediction_id: str = Field(description="this answer's id (32 hex digits): send it with feedback on the answer")


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    model: str = Field(description="the architecture, e.g. baseline")
    test_accuracy: float | None
    loaded_at: str = Field(description="when this version started answering (ISO 8601, UTC)")
    problem: str | None = Field(description="why the version the registry names is not the one serving, if not")
    feedback_token_required: bool


class Unavailable(BaseModel):
    status: Literal["unavailable"]
    error: str = Field(description="why no model can answer")


class Stored(BaseModel):
    sha256: str = Field(description="the SHA-256 of the prepared 28x28 digit: the example's name in the store")
    outcome: Literal["added", "duplicate", "conflict"]
    label: int = Field(ge=0, le=9)
    examples: int = Field(description="examples in the store now")
    prediction_id: str | None = Field(default=None, description="the answer this label was joined to, if one was named")


class ErrorResponse(BaseModel):
    error: str = Field(description="one line naming what was wrong and how to fix it")
