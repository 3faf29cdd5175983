"""Finalize an ensemble on all 60,000 training images and evaluate it, and each of its members, on the test set.

    MNIST_DATA_DIR=... .venv/bin/python bench/ensemble.py [--members 5] [--member-model improved] [--epochs N]
        [--seed 1] [--limit N]

The ensemble becomes a version in the registry of $MNIST_ARTIFACTS_DIR (point it at a scratch folder).
Its members train as parallel single-thread processes (`finalize --model ensemble`); the wall time
counts everything from the start of finalize to the saved model. Prints a Markdown report (wall
time, the ensemble's and each member's test accuracy, the issue's goals, met or not, and the
ensemble's per-class figures, with its misclassified digits and confusion matrix copied beside it)
and writes it to artifacts/bench/ensemble.md. Members found cached (a rerun) make the time
meaningless: use a fresh MNIST_ARTIFACTS_DIR for a timed run. Choose --epochs with
bench/choose_epochs.py first.
"""

import argparse
import time
from pathlib import Path

import numpy as np
from accuracy import goal_lines, tested_model_section, write_report

from mnist_pipeline import settings
from mnist_pipeline.flows.evaluate import evaluate
from mnist_pipeline.flows.finalize import finalize
from mnist_pipeline.mnist import read_directory
from mnist_pipeline.preprocessing import ScalingStats, add_channel_axis, apply_scaling
from mnist_pipeline.registry import MODEL_FILE, default_registry

GOALS = {"accuracy": 99.70, "minutes": 60}  # issue 16


def member_accuracies(version: str) -> list[float]:
    """Test accuracy (%) of each member inside the saved ensemble, on the test images scaled as it was trained."""
    from mnist_pipeline.ensemble import members_of
    from mnist_pipeline.models import load_checked_model

    registry = default_registry()
    ensemble = load_checked_model(registry.path(version) / MODEL_FILE)
    test = read_directory(settings.data_dir())
    stats = ScalingStats(**registry.metadata(version)["scaling"])
    images = apply_scaling(add_channel_axis(test.test_images), stats)
    return [
        100 * float(np.mean(member.predict(images, batch_size=256, verbose=0).argmax(axis=1) == test.test_labels))
        for member in members_of(ensemble)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--member-model", default="improved")
    parser.add_argument("--epochs", type=int, default=None, help="default: the member model's own")
    parser.add_argument("--seed", type=int, default=1, help="members train with seed + 1, seed + 2, ...")
    parser.add_argument("--limit", type=int, default=None, help="a stratified subset, for a quick check")
    arguments = parser.parse_args()
    if not settings.data_dir():
        parser.error("set MNIST_DATA_DIR to the folder with the MNIST files")

    started = time.perf_counter()
    trained = finalize(
        model="ensemble",
        members=arguments.members,
        member_model=arguments.member_model,
        epochs=arguments.epochs,
        limit=arguments.limit,
        seed=arguments.seed,
    )
    minutes = (time.perf_counter() - started) / 60
    tested = evaluate(model_version=trained.version)
    accuracy, members = 100 * tested.accuracy, member_accuracies(trained.version)
    rows = [
        f"Ensemble {trained.version}: {arguments.members} `{arguments.member_model}` members, "
        f"{Path(trained.model_path).stat().st_size / 1e6:.1f} MB.",
        "",
        "| model | test accuracy (%) |",
        "|---|---|",
        *(f"| member {number} | {member:.2f} |" for number, member in enumerate(members, start=1)),
        f"| members' mean | {np.mean(members):.3f} |",
        f"| ensemble | {accuracy:.2f} |",
        "",
        f"Wall time of finalize: {minutes:.1f} min (members' own training: {trained.seconds / 60:.1f} min summed).",
        f"Test loss: {tested.loss:.4f}.",
        "",
        *goal_lines(
            {
                f"test accuracy >= {GOALS['accuracy']}%": accuracy >= GOALS["accuracy"],
                f"trained in <= {GOALS['minutes']} minutes": minutes <= GOALS["minutes"],
            }
        ),
        "",
        *tested_model_section("ensemble", tested.output_dir),
    ]
    write_report("ensemble", rows)


if __name__ == "__main__":
    main()
