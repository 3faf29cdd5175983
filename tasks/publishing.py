"""Publishing results: the files of a run's folder (figures, JSON), its Prefect artifacts and its log lines.

Tasks elsewhere compute typed results; the tasks here record them and compute nothing of their own. Those that
draw import `figures` (matplotlib, 0.3 s) themselves, so that a flow without figures (predict) does not.
"""

from pathlib import Path
from typing import Any

import numpy as np
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from pydantic import BaseModel

from mnist_pipeline import files, reports
from mnist_pipeline.orchestration import stores
from mnist_pipeline.tasks.comparison import ComparisonSummary
from mnist_pipeline.tasks.cross_validation import CrossValidationSummary
from mnist_pipeline.tasks.data import LabeledImages
from mnist_pipeline.tasks.evaluation import TestEvaluation
from mnist_pipeline.tasks.final_model import TrainedModel
from mnist_pipeline.tasks.new_data import DataValidation
from mnist_pipeline.tasks.prediction import PredictionSummary
from mnist_pipeline.tasks.registry import GateVerdict, ModelVersion, Promotion


class Figure(BaseModel):
    png: bytes
    alt: str | None = None  # shown in the markdown artifact when given


def save_and_summarize(
    output_dir: str,
    key: str,
    description: str,
    text: list[str],
    figures: dict[str, Figure] | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Write `figures` (PNG) and `data` (JSON) into `output_dir`; a markdown artifact of `text` and the figures."""
    output = Path(output_dir)
    for name, figure in (figures or {}).items():
        files.write_bytes(output / name, figure.png)
    for name, value in (data or {}).items():
        files.write_json(output / name, value)
    images = [reports.markdown_image(figure.png, figure.alt) for figure in (figures or {}).values() if figure.alt]
    create_markdown_artifact("\n\n".join([*text, *images]), key=key, description=description)


@task(cache_policy=NO_CACHE)
def publish_cross_validation(summary: CrossValidationSummary, samples: LabeledImages) -> None:
    """The study's lines in the log; metrics.json, learning curves, box plot and sample images; artifacts."""
    from mnist_pipeline import figures

    lines = reports.study_lines(summary.accuracies)
    logger = get_run_logger()
    for line in lines:
        logger.info(line)
    labels = [str(label) for label in np.argmax(samples.labels.open()[:9], axis=1)]
    create_table_artifact(
        [
            {
                "fold": r.fold,
                "accuracy (%)": round(100 * r.accuracy, 3),
                "seconds": round(r.seconds, 1),
                "worker": r.worker,
            }
            for r in summary.folds
        ],
        key="cross-validation-folds",
        description="Validation accuracy per fold",
    )
    save_and_summarize(
        summary.output_dir,
        key="cross-validation-summary",
        description=f"mean accuracy {100 * summary.mean:.3f}%",
        text=[f"# Cross-validation of `{summary.parameters.get('model')}`", "```\n" + "\n".join(lines) + "\n```"],
        figures={
            "learning_curves.png": Figure(
                png=figures.png_bytes(figures.learning_curves([fold.history for fold in summary.folds])),
                alt="learning curves (train blue, validation orange)",
            ),
            "accuracy_boxplot.png": Figure(
                png=figures.png_bytes(figures.accuracy_box_plot(summary.accuracies)), alt="fold accuracy box plot"
            ),
            "sample_images.png": Figure(png=figures.png_bytes(figures.image_grid(samples.images.open()[:9], labels))),
        },
        data={
            "metrics.json": {
                "params": summary.parameters,
                "folds": [fold.model_dump() for fold in summary.folds],
                **summary.model_dump(include={"mean", "std", "n"}),
            }
        },
    )


@task(cache_policy=NO_CACHE)
def publish_comparison(comparison: ComparisonSummary) -> None:
    """The variants' table in the log and as an artifact; comparison.json and their box plots side by side."""
    from mnist_pipeline import figures

    table = [
        {**row, "mean": round(100 * row["mean"], 3), "std": round(100 * row["std"], 3)}
        for row in (comparison.model_dump(exclude={"rows": {"__all__": {"accuracies"}}})["rows"])
    ]
    logger = get_run_logger()
    for row in table:
        logger.info(
            "%s: mean=%.3f std=%.3f, n=%d, %.0f s (folds trained for %.0f s)",
            *(row[name] for name in ("variant", "mean", "std", "n", "seconds", "training_seconds")),
        )
    create_table_artifact(table, key="variant-comparison", description="cross-validated accuracy (%) per variant")
    save_and_summarize(
        comparison.output_dir,
        key="variant-comparison-summary",
        description=f"{len(table)} variants",
        text=[
            "# Variant comparison",
            "| variant | mean (%) | std | n | seconds | fold training seconds |\n|---|---|---|---|---|---|\n"
            + "\n".join(
                f"| {r['variant']} | {r['mean']:.3f} | {r['std']:.3f} | {r['n']} | {r['seconds']:.0f} | "
                f"{r['training_seconds']:.0f} |"
                for r in table
            ),
        ],
        figures={
            "comparison_boxplots.png": Figure(
                png=figures.png_bytes(figures.box_plots({r["variant"]: r["accuracies"] for r in comparison.rows})),
                alt="fold accuracies per variant",
            )
        },
        data={"comparison.json": {"variants": comparison.rows}},
    )


@task(cache_policy=NO_CACHE)
def publish_final_model(trained: TrainedModel, version: ModelVersion, images: int, output_dir: str) -> None:
    """finalize.json (the version and its metadata), the learning curves, and an artifact naming the version."""
    from mnist_pipeline import figures

    metadata = stores.registry().metadata(version.version)
    save_and_summarize(
        output_dir,
        key="finalized-model",
        description=f"model version {version.version}",
        text=[
            f"# Model version {version.version}",
            f"`{metadata['parameters']['model']}` trained on {images:,} images in {trained.seconds:.0f} s; "
            f"saved to `{version.path}`.",
        ],
        figures={
            "learning_curves.png": Figure(
                png=figures.png_bytes(figures.learning_curves([trained.history])), alt="training loss and accuracy"
            )
        },
        data={
            "finalize.json": {
                "version": version.version,
                "model_path": version.path,
                "output_dir": output_dir,
                "seconds": trained.seconds,
                "metadata": metadata,
            }
        },
    )


@task(cache_policy=NO_CACHE)
def publish_evaluation(version: str, evaluation: TestEvaluation, test: LabeledImages, output_dir: str) -> None:
    """The study's `> 99.090` line; metrics.json, the confusion matrix and misclassified digits; artifacts."""
    from mnist_pipeline import figures

    logger = get_run_logger()
    logger.info("> %.3f", 100 * evaluation.accuracy)
    logger.info("Test loss: %.4f (%s)", evaluation.loss, version)
    digits = np.argmax(test.labels.open(), axis=1)
    predicted = np.asarray(evaluation.predicted)
    wrong = np.flatnonzero(predicted != digits)
    shown = wrong[:9]
    create_table_artifact(
        [
            {**row, **{name: round(row[name], 4) for name in ("precision", "recall", "f1")}}
            for row in evaluation.per_class
        ],
        key="test-per-class",
        description=f"per-class test metrics of {version}",
    )
    save_and_summarize(
        output_dir,
        key="test-evaluation",
        description=f"{version}: test accuracy {100 * evaluation.accuracy:.3f}%",
        text=[
            f"# Test set: model {version}",
            f"```\n> {100 * evaluation.accuracy:.3f}\n```",
            f"Loss {evaluation.loss:.4f} on {len(digits):,} test images; {len(wrong)} misclassified.",
        ],
        figures={
            "confusion_matrix.png": Figure(
                png=figures.png_bytes(figures.confusion_matrix_figure(np.asarray(evaluation.confusion_matrix))),
                alt="confusion matrix",
            ),
            "misclassified.png": Figure(
                png=figures.png_bytes(
                    figures.image_grid(
                        test.images.open()[shown], [f"true {digits[i]}, predicted {predicted[i]}" for i in shown]
                    )
                ),
                alt="misclassified test images",
            ),
        },
        data={"metrics.json": {"version": version, **evaluation.model_dump(exclude={"predicted"})}},
    )


@task(cache_policy=NO_CACHE)
def publish_data_validation(validation: DataValidation, output_dir: str) -> None:
    """data_validation.json and an artifact with a line per check of the store's examples."""
    rows = "\n".join(
        f"| {finding.check} | {'passed' if finding.passed else 'FAILED' if finding.blocking else 'warning'} | "
        f"{finding.detail} |"
        for finding in validation.findings
    )
    save_and_summarize(
        output_dir,
        key="data-validation",
        description=validation.reason or f"{validation.examples} new examples passed",
        text=[
            f"# New data: {validation.examples} examples",
            validation.reason or "Every blocking check passed.",
            "| check | result | detail |\n|---|---|---|\n" + rows,
        ],
        data={"data_validation.json": validation.model_dump()},
    )


@task(cache_policy=NO_CACHE)
def publish_approval_request(version: str, verdict: GateVerdict, users_digits: dict | None) -> None:
    """The `approval-request` artifact: challenger and champion side by side, for the person who decides."""
    create_markdown_artifact(
        "\n\n".join(
            [
                f"# Approve {version}?",
                f"The gate passed: {verdict.reason}.",
                "| | challenger " + version + " | champion " + (verdict.champion or "none") + " |\n|---|---|---|\n"
                f"| MNIST test accuracy | {reports.percent(verdict.accuracy)} | {reports.percent(verdict.champion_accuracy)} |",
                *reports.users_digits_lines(users_digits),
                "Resume the run (the Resume button on its page) with approve or reject and a reason.",
            ]
        ),
        key="approval-request",
        description=f"{version} waits for approval",
    )


@task(cache_policy=NO_CACHE)
def publish_promotion(promotion: Promotion) -> None:
    """promotion.json, an artifact saying whether the version became champion and why, and the event
    `mnist.model.promoted` or `mnist.model.rejected` that automations can notify people of."""
    verdict = "champion" if promotion.promoted else "rejected challenger"
    save_and_summarize(
        promotion.output_dir,
        key="model-promotion",
        description=f"{promotion.version} {'promoted' if promotion.promoted else 'rejected'}",
        text=[
            f"# {promotion.version}: {verdict}",
            f"{promotion.reason}.",
            f"Previous champion: {promotion.previous_champion or 'none'}.",
            *reports.users_digits_lines(promotion.users_digits),
        ],
        data={"promotion.json": promotion.model_dump()},
    )
    emit_event(
        event=f"mnist.model.{'promoted' if promotion.promoted else 'rejected'}",
        resource={
            "prefect.resource.id": f"mnist.model.{promotion.version}",
            "prefect.resource.name": promotion.version,
        },
        payload=promotion.model_dump(exclude={"output_dir"}),
    )


@task(cache_policy=NO_CACHE)
def publish_predictions(predictions: PredictionSummary) -> None:
    """Each file's digit (or why it could not be read) in the log, predictions.json and a table artifact."""
    logger = get_run_logger()
    for result in predictions.predictions:
        if "error" in result:
            logger.warning("%s: %s", result["file"], result["error"])
        else:
            logger.info("%s: %d (p=%.3f)", result["file"], result["digit"], max(result["probabilities"]))
    files.write_json(
        Path(predictions.output_dir) / "predictions.json",
        {"version": predictions.version, "predictions": predictions.predictions},
    )
    create_table_artifact(
        [
            {
                "file": r["file"],
                "digit": r.get("digit", ""),
                "probability": round(max(r["probabilities"]), 4) if "digit" in r else "",
                "error": r.get("error", ""),
            }
            for r in predictions.predictions
        ],
        key="predictions",
        description=f"digits predicted by model {predictions.version}",
    )


@task(cache_policy=NO_CACHE)
def publish_registry() -> None:
    """The `model-registry` table artifact: every version, its status, test accuracy, data and when it was made."""
    rows = stores.registry().listing()
    create_table_artifact(
        [
            {
                "version": row["version"],
                "status": row["status"],
                "model": row["parameters"].get("model", ""),
                "test accuracy (%)": "" if row["test_accuracy"] is None else round(100 * row["test_accuracy"], 3),
                "data": f"{row['data'].get('dataset', '')} {row['data'].get('train_images', '')[:12]}",
                "created at": (row["created_at"] or "")[:19],
            }
            for row in rows
        ],
        key="model-registry",
        description=f"{len(rows)} model versions; champion {stores.registry().champion() or 'none'}",
    )
