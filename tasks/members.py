"""Training the members of an ensemble, one task each, saved to files that later runs find cached."""

from prefect import task
from pydantic import BaseModel

from mnist_pipeline import settings
from mnist_pipeline.arrays import ArrayHandle
from mnist_pipeline.config import TrainingConfig
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.files import StoredFile, store_by_digest
from mnist_pipeline.orchestration.caching import CACHED_RESULTS
from mnist_pipeline.tasks.data import ScaledImages
from mnist_pipeline.tasks.training import completed, report_epochs, worker_name


class TrainedMember(BaseModel):
    """One member trained on every training image: its saved model, per-epoch history, seconds and process."""

    member: int
    model: StoredFile
    history: dict[str, list[float]]
    seconds: float
    worker: str


@task(task_run_name="train-member-{member}", **CACHED_RESULTS)
def train_member(member: int, images: ScaledImages, labels: ArrayHandle, config: TrainingConfig) -> TrainedMember:
    """A fresh `config.model` trained with seed `config.seed + member`, saved under `settings.members_dir()`.

    The result is persisted as soon as the member ends: a rerun with the same inputs finds it Cached
    (while its file is there, unchanged) and trains only the members that did not finish.
    """
    from mnist_pipeline.training import train_model  # TensorFlow loads in the worker only

    model, history, seconds = train_model(
        config,
        images.images.open(),
        labels.open(),
        seed=config.seed + member,
        report=report_epochs(f"member {member}", key=f"training-progress-member-{member}"),
    )
    saved = store_by_digest(settings.members_dir(), ".keras", model.save)
    return TrainedMember(member=member, model=saved, history=history, seconds=seconds, worker=worker_name())


class MembersFailed(PipelineError):
    """Some members failed; the ones that finished are cached for the next run."""


def completed_members(futures) -> list[TrainedMember]:
    """Every member once all have ended, or MembersFailed naming each failed member and why."""
    return completed(futures, "member", MembersFailed)
