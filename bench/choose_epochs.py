"""Choose a model's epochs on a validation split of the training images (never the test set).

    MNIST_DATA_DIR=... .venv/bin/python bench/choose_epochs.py [--model improved] [--epochs 15,20,25,30]
        [--seeds 1,2] [--validation 10000] [--budget-minutes 20] [--limit N]

Trains the model once per (epochs, seed) on the training images less a stratified validation split
(10,000 by default; the learning rate follows its cosine over each run's own epochs, so every count
is a run of its own), in this process with every core, as `finalize` trains. Prints a Markdown
table (validation accuracy per seed, mean, training time and that time scaled to all 60,000 images)
and the choice: the best mean validation accuracy among the counts whose scaled time is within the
budget (ties: fewer epochs). Writes it to artifacts/bench/<model>_epochs.md. With the defaults,
about 3 hours on two cores; `--seeds 1` halves that.
"""

import argparse
import statistics

from accuracy import goal_lines, validation_split, write_report

from mnist_pipeline import settings
from mnist_pipeline.config import TrainingConfig

FULL_TRAINING = 60_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="improved")
    parser.add_argument("--epochs", default="15,20,25,30", help="the counts to compare")
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--validation", type=int, default=10_000, help="training images held out to validate on")
    parser.add_argument("--budget-minutes", type=float, default=20, help="the most one finalize may train")
    parser.add_argument("--limit", type=int, default=None, help="a stratified subset of the training images")
    arguments = parser.parse_args()
    if not settings.data_dir():
        parser.error("set MNIST_DATA_DIR to the folder with the MNIST files")
    from mnist_pipeline.training import train_model  # TensorFlow loads after the arguments are checked

    seeds = [int(seed) for seed in arguments.seeds.split(",")]
    x_train, y_train, x_validation, y_validation = validation_split(arguments.validation, 1, arguments.limit)
    rows = [
        f"Training on {len(x_train):,} images, validating on {len(x_validation):,} held-out training images.",
        "",
        "| epochs | validation accuracy (%) per seed | mean (%) | training time | scaled to 60,000 |",
        "|---|---|---|---|---|",
    ]
    results = {}
    for epochs in [int(count) for count in arguments.epochs.split(",")]:
        accuracies, seconds = [], []
        for seed in seeds:
            config = TrainingConfig(model=arguments.model, epochs=epochs, seed=seed)
            _, history, took = train_model(config, x_train, y_train, (x_validation, y_validation))
            accuracies.append(100 * history["val_accuracy"][-1])
            seconds.append(took)
            print(
                f"{arguments.model} {epochs} epochs seed {seed}: {accuracies[-1]:.2f}% in {took / 60:.1f} min",
                flush=True,
            )
        scaled = statistics.mean(seconds) * FULL_TRAINING / len(x_train)
        results[epochs] = (statistics.mean(accuracies), scaled)
        rows.append(
            f"| {epochs} | {', '.join(f'{accuracy:.2f}' for accuracy in accuracies)} "
            f"| {results[epochs][0]:.3f} | {statistics.mean(seconds) / 60:.1f} min | {scaled / 60:.1f} min |"
        )
    within = {epochs: result for epochs, result in results.items() if result[1] <= 60 * arguments.budget_minutes}
    rows.append("")
    if within:
        chosen = max(within, key=lambda epochs: (round(within[epochs][0], 3), -epochs))
        rows.append(f"Chosen: {chosen} epochs (the best mean validation accuracy within the budget).")
    rows += goal_lines({f"some count trains within {arguments.budget_minutes:g} minutes": bool(within)})
    write_report(f"{arguments.model}_epochs", rows)


if __name__ == "__main__":
    main()
