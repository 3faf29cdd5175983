"""The aggregate task: fold scores into the study's summary, figures, metrics.json and artifacts."""

from pathlib import Path
from typing import Any

import numpy as np
from mnist_pipeline.tasks.data import LabeledImages
from mnist_pipeline.tasks.training import FoldResult
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import BaseModel

from mnist_pipeline import files, reports


class CrossValidationSummary(BaseModel):
    output_dir: str
    accuracies: list[float]
    mean: float
    std: float
    n: int
    training_seconds: float  # the folds' own, summed: also for folds a rerun found cached


@task
def aggregate_folds(
    results: list[FoldResult], params: dict[str, Any], samples: LabeledImages, output_dir: str
) -> CrossValidationSummary:
    """Print the study's lines; write figures and metrics.json to `output_dir`; publish artifacts."""
    results = sorted(results, key=lambda result: result.fold)
    accuracies = [result.accuracy for result in results]
    summary = reports.summarize(accuracies)
    logger = get_run_logger()
    for line in reports.study_lines(accuracies):
        logger.info(line)

    output = Path(output_dir)
    images = samples.images.open()[:9]
    labels = [str(label) for label in np.argmax(samples.labels.open()[:9], axis=1)]
    figures = {
        "learning_curves.png": reports.png_bytes(reports.learning_curves([result.history for result in results])),
        "accuracy_boxplot.png": reports.png_bytes(reports.accuracy_box_plot(accuracies)),
        "sample_images.png": reports.png_bytes(reports.image_grid(images, labels)),
    }
    for name, png in figures.items():
        files.write_bytes(output / name, png)
    metrics = {"params": params, "folds": [result.model_dump() for result in results], **summary}
    files.write_json(output / "metrics.json", metrics)

    rows = [
        {"fold": r.fold, "accuracy (%)": round(100 * r.accuracy, 3), "seconds": round(r.seconds, 1), "worker": r.worker}
        for r in results
    ]
    create_table_artifact(rows, key="cross-validation-folds", description="Validation accuracy per fold")
    create_markdown_artifact(
        "\n\n".join(
            [
                f"# Cross-validation of `{params.get('model')}`",
                "```\n" + "\n".join(reports.study_lines(accuracies)) + "\n```",
                reports.markdown_image(
                    figures["learning_curves.png"], "learning curves (train blue, validation orange)"
                ),
                reports.markdown_image(figures["accuracy_boxplot.png"], "fold accuracy box plot"),
                f"Outputs: `{output}`",
            ]
        ),
        key="cross-validation-summary",
        description=f"mean accuracy {100 * summary['mean']:.3f}%",
    )
    training_seconds = sum(result.seconds for result in results)
    return CrossValidationSummary(
        output_dir=str(output), accuracies=accuracies, training_seconds=training_seconds, **summary
    )
