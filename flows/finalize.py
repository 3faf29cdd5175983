"""Train the chosen model on all training images and register it as a new version."""

from prefect import flow
from prefect.runtime import flow_run
from pydantic import BaseModel

from mnist_pipeline import settings
from mnist_pipeline.config import TrainingConfig
from mnist_pipeline.data_checks import DataRejected
from mnist_pipeline.flows import parameters as p
from mnist_pipeline.tasks.data import download_mnist, fit_scaling, normalize_images, prepare_split
from mnist_pipeline.tasks.final_model import train_final_model
from mnist_pipeline.tasks.new_data import add_examples, read_store_examples, validate_data
from mnist_pipeline.tasks.publishing import publish_data_validation, publish_final_model, publish_registry
from mnist_pipeline.tasks.registry import register_version


class FinalizeSummary(BaseModel):
    version: str
    model_path: str
    output_dir: str
    seconds: float


@flow(name="finalize", flow_run_name=p.run_name("finalize-{model}-s{seed}"))
@p.described("Train the chosen model on all training images and save it as the registry's next version.")
def finalize(
    model: p.Model = "deeper",
    epochs: p.Epochs = None,
    batch_size: p.BatchSize = 32,
    learning_rate: p.LearningRate = None,
    scaling: p.Scaling = "unit",
    limit: p.Limit = None,
    seed: int = 1,
    data_dir: str | None = None,
    h5: bool = False,
    new_data: bool = False,
    output_dir: str | None = None,
) -> FinalizeSummary:
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
    config = TrainingConfig(model=model, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed)
    trained = train_final_model(scaled, train.labels, config, str(output), h5)
    parameters = {**flow_run.parameters, **config.model_dump()}  # epochs and learning rate as trained, when left empty
    version = register_version(trained, raw, scaled.stats, parameters, lineage)
    publish_final_model(trained, version, train.images.shape[0], str(output))
    publish_registry()
    return FinalizeSummary(
        version=version.version, model_path=version.path, output_dir=str(output), seconds=trained.seconds
    )
