"""The study's k-fold cross-validation: folds train in parallel on cached, memory-mapped arrays."""

from prefect import flow
from prefect.runtime import flow_run

from mnist_pipeline import settings
from mnist_pipeline.config import TrainingConfig
from mnist_pipeline.flows import parameters as p
from mnist_pipeline.orchestration.caching import save_shared_result_storage
from mnist_pipeline.orchestration.runners import check_runner_options, fold_task_runner, runner_for
from mnist_pipeline.parallel import fold_workers
from mnist_pipeline.tasks.cross_validation import CrossValidationSummary, summarize_folds
from mnist_pipeline.tasks.data import download_mnist, fit_scaling, normalize_images, prepare_split
from mnist_pipeline.tasks.publishing import publish_cross_validation
from mnist_pipeline.tasks.splits import split_folds
from mnist_pipeline.tasks.training import completed_folds, train_fold


@flow(name="cross-validate", flow_run_name=p.run_name("cv-{model}-{folds}folds"))
@p.described("Estimate a model's accuracy by k-fold cross-validation, as the study does.")
def cross_validate(
    model: p.SingleModel = "baseline",
    folds: p.Folds = 5,
    epochs: p.Epochs = 0,
    batch_size: p.BatchSize = 32,
    learning_rate: p.LearningRate = 0.0,
    scaling: p.Scaling = "unit",
    limit: p.Limit = 0,
    seed: int = 1,
    workers: p.Workers = 0,
    runner: p.Runner = "process",
    retries: p.Retries = 0,
    dask_address: p.DaskAddress = "",
    data_dir: p.Folder = "",
    output_dir: p.Folder = "",
) -> CrossValidationSummary:
    check_runner_options(runner, dask_address)
    save_shared_result_storage()
    output = settings.run_dir("cross-validate", output_dir)
    raw = download_mnist(data_dir)
    train = prepare_split(raw, "train", limit, seed)
    splits = split_folds(train.images.shape[0], folds, seed)
    scaled = [
        normalize_images(train.images, fit_scaling(train.images, scaling, train_index)) for train_index, _ in splits
    ]
    config = TrainingConfig(model=model, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed)
    calls = [
        {
            "fold": fold,
            "images": images,
            "labels": train.labels,
            "train_index": train_index,
            "validation_index": validation_index,
            "config": config,
        }
        for fold, images, (train_index, validation_index) in zip(range(1, folds + 1), scaled, splits)
    ]
    with fold_task_runner(
        runner_for(train_fold, calls, runner), workers or fold_workers(folds, settings.available_cores()), dask_address
    ) as task_runner:
        futures = task_runner.map(
            train_fold.with_options(retries=retries), {name: [call[name] for call in calls] for name in calls[0]}
        )
        results = completed_folds(futures)
    parameters = {**flow_run.parameters, **config.model_dump()}  # epochs and learning rate as trained, when left empty
    summary = summarize_folds(results, parameters, str(output))
    publish_cross_validation(summary, train)
    return summary
