"""Train the chosen model on all training images and register it as a new version."""

from mnist_pipeline.flows import parameters as p
from mnist_pipeline.tasks.data import download_mnist, fit_scaling, normalize_images, reshape_images
from mnist_pipeline.tasks.models import FinalizeSummary, register_model, train_final_model
from prefect import flow
from prefect.runtime import flow_run

from mnist_pipeline import settings
from mnist_pipeline.config import TrainingConfig


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
    output_dir: str | None = None,
) -> FinalizeSummary:
    raw = download_mnist(data_dir)
    train = reshape_images(raw, "train", limit, seed)
    scaled = normalize_images(train.images, fit_scaling(train.images, scaling))
    config = TrainingConfig(model=model, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed)
    trained = train_final_model(scaled, train.labels, config)
    parameters = {**flow_run.parameters, **config.model_dump()}  # epochs and learning rate as trained, when left empty
    return register_model(trained, raw, scaled, parameters, h5, str(settings.run_dir("finalize", output_dir)))
