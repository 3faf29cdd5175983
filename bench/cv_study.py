"""The study's 5-fold cross-validation of baseline and deeper on all 60,000 training images.

    MNIST_DATA_DIR=... .venv/bin/python bench/cv_study.py [--models baseline,deeper] [--epochs 10]

Prints a Markdown table (mean +- std against the study's figures, wall time) and writes it to
artifacts/bench/cv_study.md. Takes about half an hour on two cores.
"""

import argparse
import time

from mnist_pipeline import files, settings
from mnist_pipeline.flows.cross_validate import cross_validate

STUDY = {"baseline": (98.677, 0.107), "batchnorm": (98.643, 0.101), "deeper": (99.062, 0.104)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="baseline,deeper")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--folds", type=int, default=5)
    arguments = parser.parse_args()

    rows = ["| model | mean +- std (%) | study (%) | difference | folds | wall time |", "|---|---|---|---|---|---|"]
    for model in arguments.models.split(","):
        started = time.perf_counter()
        summary = cross_validate(model=model, folds=arguments.folds, epochs=arguments.epochs)
        minutes = (time.perf_counter() - started) / 60
        study_mean, study_std = STUDY[model]
        rows.append(
            f"| {model} | {100 * summary.mean:.3f} +- {100 * summary.std:.3f} | {study_mean:.3f} +- {study_std:.3f} "
            f"| {100 * summary.mean - study_mean:+.3f} | {summary.n} | {minutes:.1f} min |"
        )
    table = "\n".join(rows)
    print(table)
    print(f"Table written to {files.write_bytes(settings.artifacts_dir() / 'bench' / 'cv_study.md', table.encode())}")


if __name__ == "__main__":
    main()
