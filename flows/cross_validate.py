"""The study's k-fold cross-validation: folds train in parallel on cached, memory-mapped arrays."""

from prefect import flow, unmapped
from prefect.runtime import flow_run

from flows import parameters as p
from mnist_pipeline import settings
from mnist_pipeline.config import TrainingConfig
from mnist_pipeline.parallel import fold_workers
from tasks.data import download_mnist, fit_scaling, normalize_images, reshape_images
from tasks.reporting import CrossValidationSummary, aggregate_folds
from tasks.splits import split_folds
from tasks.runners import check_runner_options, fold_task_runner
from tasks.training import train_fold


@flow(name="cross-validate")
def cross_validate(
    model: p.Model = "baseline",
    folds: p.Folds = 5,
    epochs: p.Epochs = 10,
    batch_size: p.BatchSize = 32,
    learning_rate: p.LearningRate = 0.01,
    scaling: p.Scaling = "unit",
    limit: p.Limit = None,
    seed: int = 1,
    workers: p.Workers = None,
    runner: p.Runner = "process",
    dask_address: p.DaskAddress = None,
    data_dir: str | None = None,
    output_dir: str | None = None,
) -> CrossValidationSummary:
    """Estimate a model's accuracy by k-fold cross-validation, as the study does.

    Args:
        model: The study's CNN: baseline (one conv block), batchnorm (with batch normalization)
            or deeper (three conv layers).
        folds: Cross-validation folds (KFold, shuffled with the seed).
        epochs: Passes over the training images per fold.
        batch_size: Images per SGD step.
        learning_rate: SGD learning rate (momentum 0.9).
        scaling: unit: pixels/255 (the study's); center: minus the mean pixel; standardize:
            zero mean, unit variance. Statistics come from each fold's training images only.
        limit: Use a stratified subset of this many training images, for quick runs.
            Empty: all of them.
        seed: Seed for the folds, the subset and weight initialization.
        workers: Folds trained in parallel. Empty: the fewest processes that finish the folds
            soonest on the CPU cores (5 folds on 2 cores: 3, each with one TensorFlow thread).
        runner: process: each fold in its own process (robust for TensorFlow); thread: threads
            of the flow's process; dask: a Dask cluster (dask_address), else a LocalCluster of
            worker processes.
        dask_address: Scheduler of an existing Dask cluster, e.g. tcp://host:8786 (runner=dask
            only). Its workers need this project installed and must reach the Prefect API and
            the array cache (MNIST_CACHE_URL). Empty: a LocalCluster of `workers` processes.
        data_dir: Folder with the four MNIST IDX files (.gz or raw) or mnist.npz.
            Empty: $MNIST_DATA_DIR, else download.
        output_dir: Where results are written. Empty: artifacts/runs/cross-validate-<timestamp>/.
    """
    check_runner_options(runner, dask_address)
    raw = download_mnist(data_dir)
    train = reshape_images(raw, "train", limit, seed)
    splits = split_folds(train.images.shape[0], folds, seed)
    scaled = [normalize_images(train.images, fit_scaling(train.images, scaling, train_index)) for train_index, _ in splits]
    config = TrainingConfig(model=model, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=seed)
    with fold_task_runner(runner, workers or fold_workers(folds, settings.available_cores()), dask_address) as task_runner:
        results = task_runner.map(
            train_fold,
            {
                "fold": range(1, folds + 1),
                "images": scaled,
                "labels": unmapped(train.labels),
                "train_index": [train_index for train_index, _ in splits],
                "validation_index": [validation_index for _, validation_index in splits],
                "config": unmapped(config),
            },
        ).result()
    return aggregate_folds(results, flow_run.parameters, train, str(settings.run_dir("cross-validate", output_dir)))
