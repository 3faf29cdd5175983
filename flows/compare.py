"""Cross-validate several variants (models x scalings x learning rates) on the same cached data."""

import itertools
import time
from pathlib import Path

from prefect import flow
from prefect.runtime import flow_run

from mnist_pipeline import settings
from mnist_pipeline.config import TrainingConfig
from mnist_pipeline.flows import parameters as p
from mnist_pipeline.flows.cross_validate import cross_validate
from mnist_pipeline.tasks.comparison import ComparisonSummary, tabulate_variants
from mnist_pipeline.tasks.publishing import publish_comparison


@flow(name="compare", flow_run_name=p.run_name("compare-{models}models"))
@p.described("The study's 'explore improvements': cross-validate every combination and compare them.")
def compare(
    models: p.Models = ["baseline", "batchnorm", "deeper"],  # noqa: B006 - Prefect needs literal defaults
    scalings: p.Scalings = ["unit"],  # noqa: B006
    learning_rates: p.LearningRates = [],  # noqa: B006 - Prefect needs literal defaults
    folds: p.Folds = 5,
    epochs: p.Epochs = 0,
    batch_size: p.BatchSize = 32,
    limit: p.Limit = 0,
    seed: int = 1,
    workers: p.Workers = 0,
    runner: p.Runner = "process",
    dask_address: p.DaskAddress = "",
    data_dir: p.Folder = "",
    output_dir: p.Folder = "",
) -> ComparisonSummary:
    output = Path(settings.run_dir("compare", output_dir))
    shared = p.passed_on(cross_validate, flow_run.parameters)  # folds, epochs, ..., data_dir
    variants = {}
    for model, scaling, learning_rate in itertools.product(models, scalings, learning_rates or [None]):
        name = f"{model}-{scaling}-lr{TrainingConfig(model=model, learning_rate=learning_rate).learning_rate:g}"
        started = time.perf_counter()
        variant = {"model": model, "scaling": scaling, "learning_rate": learning_rate, "output_dir": str(output / name)}
        summary = cross_validate(**shared | variant)
        variants[name] = (summary, time.perf_counter() - started)
    comparison = tabulate_variants(variants, str(output))
    publish_comparison(comparison)
    return comparison
