"""Train the chosen model on all training images and register it as a new version."""

from prefect import flow, unmapped
from prefect.runtime import flow_run
from pydantic import BaseModel

from mnist_pipeline import settings
from mnist_pipeline.arrays import ArrayHandle
from mnist_pipeline.config import TrainingConfig
from mnist_pipeline.data_checks import DataRejected
from mnist_pipeline.flows import parameters as p
from mnist_pipeline.orchestration.caching import save_shared_result_storage
from mnist_pipeline.orchestration.runners import fold_task_runner
from mnist_pipeline.orchestration.training_slot import training_slot
from mnist_pipeline.parallel import fold_workers
from mnist_pipeline.tasks.data import ScaledImages, download_mnist, fit_scaling, normalize_images, prepare_split
from mnist_pipeline.tasks.final_model import TrainedModel, assemble_ensemble, train_final_model
from mnist_pipeline.tasks.members import completed_members, train_member
from mnist_pipeline.tasks.new_data import add_examples, read_store_examples, validate_data
from mnist_pipeline.tasks.publishing import publish_data_validation, publish_final_model, publish_registry
from mnist_pipeline.tasks.registry import register_version
from mnist_pipeline.training_request import TrainingRequest


class FinalizeSummary(BaseModel):
    version: str
    model_path: str
    output_dir: str
    seconds: float


@flow(name="finalize", flow_run_name=p.run_name("finalize-{model}-s{seed}"))
@p.described("Train the chosen model on all training images and save it as the registry's next version.")
def finalize(
    model: p.Model = "deeper",
    epochs: p.Epochs = 0,
    batch_size: p.BatchSize = 32,
    learning_rate: p.LearningRate = 0.0,
    scaling: p.Scaling = "unit",
    limit: p.Limit = 0,
    seed: int = 1,
    data_dir: p.Folder = "",
    h5: bool = False,
    new_data: bool = False,
    members: p.Members = 5,
    member_model: p.SingleModel = "improved",
    output_dir: p.Folder = "",
) -> FinalizeSummary:
    save_shared_result_storage()
    request = TrainingRequest.among(flow_run.parameters)  # all but the folders
    output = settings.run_dir("finalize", output_dir)
    raw = download_mnist(data_dir)
    train = prepare_split(raw, "train", limit, seed)
    lineage = None
    if new_data:
        examples = read_store_examples()
        validation = validate_data(examples, raw)
        publish_data_validation(validation, str(output))
        if validation.reason:
            raise DataRejected(validation.reason)
        train, lineage = add_examples(train, examples.train), examples.lineage()
    scaled = normalize_images(train.images, fit_scaling(train.images, scaling))
    config = request.training_config()  # an ensemble's: each member's
    if request.ensemble:
        trained = train_ensemble(scaled, train.labels, config, members, str(output), h5)
    else:
        trained = train_final_model(scaled, train.labels, config, str(output), h5)
    parameters = {**request.record(), "data_dir": data_dir, "output_dir": output_dir}
    version = register_version(trained, raw, scaled.stats, parameters, lineage)
    publish_final_model(trained, version, train.images.shape[0], str(output))
    publish_registry()
    return FinalizeSummary(
        version=version.version, model_path=version.path, output_dir=str(output), seconds=trained.seconds
    )


def train_ensemble(
    images: ScaledImages, labels: ArrayHandle, config: TrainingConfig, members: int, output_dir: str, h5: bool
) -> TrainedModel:
    """`members` models of `config`, trained in parallel single-thread processes (holding the `mnist-training`
    slot, as a single model's training does), averaged into one saved model."""
    with training_slot(), fold_task_runner("process", fold_workers(members, settings.available_cores())) as runner:
        futures = runner.map(
            train_member,
            {
                "member": range(1, members + 1),
                "images": unmapped(images),
                "labels": unmapped(labels),
                "config": unmapped(config),
            },
        )
        trained = completed_members(futures)
    return assemble_ensemble(trained, output_dir, h5)
