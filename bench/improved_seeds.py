"""Finalize a model on all 60,000 training images with several seeds and evaluate each on the test set.

    MNIST_DATA_DIR=... .venv/bin/python bench/improved_seeds.py [--model improved] [--seeds 1,2,3] [--epochs N]
        [--limit N]

Each seed becomes a version in the registry of $MNIST_ARTIFACTS_DIR (point it at a scratch folder to
keep your own registry clean). Prints a Markdown report (training time, test accuracy and loss per
seed; mean and spread; the issue's goals, met or not; the per-class figures of the best seed, whose
misclassified digits and confusion matrix are copied beside it) and writes it to
artifacts/bench/<model>_seeds.md. Choose --epochs with bench/choose_epochs.py first: the test set
only measures. About 10 minutes a seed for `improved` at its own 15 epochs on two cores.
"""

import argparse
import statistics

from accuracy import goal_lines, tested_model_section, write_report

from mnist_pipeline.flows.evaluate import evaluate
from mnist_pipeline.flows.finalize import finalize

GOALS = {"mean": 99.65, "each": 99.60, "minutes": 20}  # issue 16, for `improved`


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="improved")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--epochs", type=int, default=None, help="default: the model's own")
    parser.add_argument("--limit", type=int, default=None, help="a stratified subset, for a quick check")
    arguments = parser.parse_args()

    rows = ["| seed | version | training time | test accuracy (%) | test loss |", "|---|---|---|---|---|"]
    results = []
    for seed in [int(seed) for seed in arguments.seeds.split(",")]:
        trained = finalize(model=arguments.model, epochs=arguments.epochs, limit=arguments.limit, seed=seed)
        tested = evaluate(model_version=trained.version)
        results.append((100 * tested.accuracy, trained.seconds / 60, tested))
        rows.append(
            f"| {seed} | {trained.version} | {trained.seconds / 60:.1f} min | {100 * tested.accuracy:.2f} | {tested.loss:.4f} |"
        )
    accuracies = [accuracy for accuracy, _, _ in results]
    spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    mean = statistics.mean(accuracies)
    rows.append(f"| mean +- std | | | {mean:.3f} +- {spread:.3f} (min {min(accuracies):.2f}) | |")
    rows += [""] + goal_lines(
        {
            f"mean >= {GOALS['mean']}%": mean >= GOALS["mean"],
            f"every seed >= {GOALS['each']}%": min(accuracies) >= GOALS["each"],
            f"every seed trains in <= {GOALS['minutes']} minutes": max(m for _, m, _ in results) <= GOALS["minutes"],
        }
    )
    _, _, best = max(results, key=lambda result: result[0])
    rows += [""] + tested_model_section(f"{arguments.model}_best_seed", best.output_dir)
    write_report(f"{arguments.model}_seeds", rows)


if __name__ == "__main__":
    main()
