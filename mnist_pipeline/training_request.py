"""What `finalize` trains, as one typed object: `retrain` builds it, `finalize` records it in the version's
metadata, and `retrain` compares it whole with the champion's record to tell whether anything changed."""

from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from mnist_pipeline.config import ENSEMBLE, ModelName, SingleModelName, TrainingConfig
from mnist_pipeline.preprocessing import Scaling


class TrainingRequest(BaseModel):
    """The training parameters of a model version. Where a run reads and writes (data_dir, output_dir) is no
    part of it; `epochs` and `learning_rate` left out (None) are the model's own."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # a record's folders, a flow's other parameters

    model: ModelName = "deeper"
    epochs: int | None = None
    batch_size: int = 32
    learning_rate: float | None = None
    scaling: Scaling = "unit"
    limit: int | None = None
    seed: int = 1
    h5: bool = False
    new_data: bool = False
    members: int = 5
    member_model: SingleModelName = "improved"

    @classmethod
    def among(cls, parameters: Mapping[str, Any], **overrides: Any) -> Self:
        """The request in a flow run's parameters (the others ignored), with `overrides`."""
        return cls.model_validate({**parameters, **overrides})

    @property
    def ensemble(self) -> bool:
        return self.model == ENSEMBLE

    def training_config(self) -> TrainingConfig:
        """How each model trains: the model itself, or an ensemble's every member."""
        return TrainingConfig(
            model=self.member_model if self.ensemble else self.model,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            seed=self.seed,
        )

    def as_trained(self) -> Self:
        """The same request with the epochs and learning rate it trains with, and, for a single model, the
        ensemble's fields at their defaults (they do not apply)."""
        config = self.training_config()
        trained = {"epochs": config.epochs, "learning_rate": config.learning_rate}
        if not self.ensemble:
            trained |= {name: type(self).model_fields[name].default for name in ("members", "member_model")}
        return self.model_copy(update=trained)

    def record(self) -> dict[str, Any]:
        """The parameters a version's metadata keeps: as trained, without an ensemble's fields on a single model."""
        return self.as_trained().model_dump(exclude=None if self.ensemble else {"members", "member_model"})

    def same_as(self, recorded: Mapping[str, Any]) -> bool:
        """Whether a version whose metadata records `recorded` was trained as this request would train. A field
        its record lacks (added since) takes its default, so new code alone changes nothing."""
        try:
            earlier = type(self).model_validate(dict(recorded))
        except ValidationError:  # recorded with values this code no longer trains (a model removed since)
            return False
        return earlier.as_trained() == self.as_trained()
