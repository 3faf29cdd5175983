"""Helpers for the accuracy benchmarks: a validation split carved from the training images, goal checks,
and what docs/RESULTS.md shows of a tested model (per-class figures, the misclassified digits)."""

import json
import shutil
from pathlib import Path

import numpy as np

from mnist_pipeline import files, settings
from mnist_pipeline.mnist import read_directory
from mnist_pipeline.preprocessing import add_channel_axis, apply_scaling, fit_scaling, one_hot
from mnist_pipeline.splits import stratified_subset

BENCH_DIR = settings.artifacts_dir() / "bench"


def validation_split(validation: int, seed: int, limit: int | None = None):
    """(x_train, y_train, x_validation, y_validation) from the 60,000 training images only (the test set stays
    unseen): `validation` of them drawn stratified with `seed`, the rest (or `limit` of all) to train on;
    scaled to [0, 1] as the study does."""
    data = read_directory(settings.data_dir())
    images, labels = data.train_images, data.train_labels
    if limit:
        chosen = stratified_subset(labels, limit, seed)
        images, labels = images[chosen], labels[chosen]
    held_out = np.zeros(len(labels), dtype=bool)
    held_out[stratified_subset(labels, validation, seed)] = True
    x = apply_scaling(add_channel_axis(images), fit_scaling(images[~held_out], "unit"))
    y = one_hot(labels)
    return x[~held_out], y[~held_out], x[held_out], y[held_out]


def goal_lines(checks: dict[str, bool]) -> list[str]:
    return [f"- [{'x' if met else ' '}] {goal}" for goal, met in checks.items()]


def per_class_rows(metrics: dict) -> list[str]:
    """A Markdown table of `evaluation.test_metrics`' per-class figures, with each digit's error count."""
    lines = ["| digit | precision | recall | F1 | support | errors |", "|---|---|---|---|---|---|"]
    for row, confusion in zip(metrics["per_class"], metrics["confusion_matrix"]):
        errors = row["support"] - confusion[row["digit"]]
        lines.append(
            f"| {row['digit']} | {row['precision']:.4f} | {row['recall']:.4f} | {row['f1']:.4f} "
            f"| {row['support']} | {errors} |"
        )
    return lines


def tested_model_section(name: str, evaluation_dir: str) -> list[str]:
    """Markdown: the per-class test figures of an evaluate run, and its misclassified digits and confusion
    matrix copied into artifacts/bench/ as `<name>_misclassified.png` and `<name>_confusion_matrix.png`."""
    evaluation = Path(evaluation_dir)
    metrics = json.loads((evaluation / "metrics.json").read_text())
    lines = [f"Per-class test figures of {metrics['version']} ({name}):", "", *per_class_rows(metrics)]
    for figure in ("misclassified", "confusion_matrix"):
        copy = BENCH_DIR / f"{name}_{figure}.png"
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(evaluation / f"{figure}.png", copy)
        lines.append(f"\n{figure.replace('_', ' ').capitalize()}: {copy}")
    return lines


def write_report(name: str, lines: list[str]) -> None:
    text = "\n".join(lines)
    print(text)
    print(f"Report written to {files.write_bytes(BENCH_DIR / f'{name}.md', text.encode())}")
