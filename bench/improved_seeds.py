"""Finalize a model on all 60,000 training images with several seeds and evaluate each on the test set.

    MNIST_DATA_DIR=... .venv/bin/python bench/improved_seeds.py [--model improved] [--seeds 1,2,3]

Each seed becomes a version in the registry of $MNIST_ARTIFACTS_DIR (point it at a scratch folder to
keep your own registry clean). Prints a Markdown table (training time, test accuracy and loss per
seed; mean and spread) and writes it to artifacts/bench/<model>_seeds.md. About 10 minutes a seed
for `improved` on two cores.
"""

import argparse
import statistics

from mnist_pipeline import files, settings
from mnist_pipeline.flows.evaluate import evaluate
from mnist_pipeline.flows.finalize import finalize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="improved")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--epochs", type=int, default=None, help="default: the model's own")
    arguments = parser.parse_args()

    rows = ["| seed | version | training time | test accuracy (%) | test loss |", "|---|---|---|---|---|"]
    accuracies = []
    for seed in [int(seed) for seed in arguments.seeds.split(",")]:
        trained = finalize(model=arguments.model, epochs=arguments.epochs, seed=seed)
        tested = evaluate(model_version=trained.version)
        accuracies.append(100 * tested.accuracy)
        rows.append(
            f"| {seed} | {trained.version} | {trained.seconds / 60:.1f} min | {100 * tested.accuracy:.2f} | {tested.loss:.4f} |"
        )
    spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    rows.append(
        f"| mean +- std | | | {statistics.mean(accuracies):.3f} +- {spread:.3f} (min {min(accuracies):.2f}) | |"
    )
    table = "\n".join(rows)
    print(table)
    path = settings.artifacts_dir() / "bench" / f"{arguments.model}_seeds.md"
    print(f"Table written to {files.write_bytes(path, table.encode())}")


if __name__ == "__main__":
    main()
