"""Prefect's overhead: the cross-validate flow against the same work without Prefect, on a trivial workload.

    MNIST_DATA_DIR=... .venv/bin/python bench/overhead.py [--repeats 2] [--limit 1000]

Trivial workload: a 1,000-image subset, 5 folds, 1 epoch of baseline, so that fixed costs dominate.
"Without Prefect" runs the same pure functions in the same order: MNIST read and verified, arrays
saved to the content-addressed cache, per-fold scaling, folds in a pool of processes forked from a
forkserver that imported TensorFlow (as the flow's are) with the same initializer and worker count, the
same figures and metrics.json. Both start in fresh processes with fresh artifacts; the flow reports to
a Prefect server started once. Runs alternate. Target: the flow takes at most 5% + 3 s longer.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from measure import conditions, prefect_server, run_measured

FOLDS, EPOCHS, SEED = 5, 1, 1


def train_one_fold(fold, images, labels, train_index, validation_index, config):
    from mnist_pipeline.training import fit_and_validate

    x, y = images.open(), labels.open()
    history, seconds = fit_and_validate(
        config, x[train_index], y[train_index], x[validation_index], y[validation_index], seed=config.seed + fold
    )
    return fold, history, seconds


def without_prefect(data_dir: str, limit: int, output: str) -> None:
    from mnist_pipeline import figures, files, mnist, preprocessing, reports, settings
    from mnist_pipeline.arrays import save_array
    from mnist_pipeline.config import TrainingConfig
    from mnist_pipeline.parallel import configure_tensorflow_threads, fold_workers, threads_per_worker
    from mnist_pipeline.splits import kfold_indices, stratified_subset

    cache = settings.cache_url()
    data = mnist.read_directory(Path(data_dir))
    mnist.identify(data, data_dir)
    raw = {name: save_array(array, cache) for name, array in data._asdict().items()}
    index = stratified_subset(raw["train_labels"].open(), limit, SEED)
    images = save_array(preprocessing.add_channel_axis(raw["train_images"].open()[index]), cache)
    labels = save_array(preprocessing.one_hot(raw["train_labels"].open()[index]), cache)
    splits = kfold_indices(limit, FOLDS, SEED)
    scaled = [
        save_array(
            preprocessing.apply_scaling(images.open(), preprocessing.fit_scaling(images.open(), "unit", train)), cache
        )
        for train, _ in splits
    ]
    config = TrainingConfig(epochs=EPOCHS, seed=SEED)
    workers = fold_workers(FOLDS, settings.available_cores())
    threads = threads_per_worker(settings.available_cores(), workers)
    forkserver = get_context("forkserver")
    forkserver.set_forkserver_preload(
        ["tensorflow", "keras"]
    )  # as mnist_pipeline/orchestration/preloaded_process_pool.py, less Prefect
    with ProcessPoolExecutor(
        workers, mp_context=forkserver, initializer=configure_tensorflow_threads, initargs=(threads,)
    ) as pool:
        jobs = [
            pool.submit(train_one_fold, fold, scaled[fold - 1], labels, train, validation, config)
            for fold, (train, validation) in enumerate(splits, start=1)
        ]
        results = sorted(job.result() for job in jobs)
    accuracies = [history["val_accuracy"][-1] for _, history, _ in results]
    print("\n".join(reports.study_lines(accuracies)))
    histories = [history for _, history, _ in results]
    sample = images.open()[:9]
    for name, figure in {
        "learning_curves.png": figures.learning_curves(histories),
        "accuracy_boxplot.png": figures.accuracy_box_plot(accuracies),
        "sample_images.png": figures.image_grid(sample),
    }.items():
        files.write_bytes(Path(output) / name, figures.png_bytes(figure))
    files.write_bytes(
        Path(output) / "metrics.json", json.dumps({"folds": accuracies, **reports.summarize(accuracies)}).encode()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--data-dir", default=os.environ.get("MNIST_DATA_DIR"))
    parser.add_argument("--plain", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if not arguments.data_dir:
        parser.error("set MNIST_DATA_DIR or --data-dir to a folder with the MNIST files")
    if arguments.plain:
        return without_prefect(arguments.data_dir, arguments.limit, arguments.plain)

    walls: dict[str, list[float]] = {"flow": [], "plain": []}
    before = conditions()
    with prefect_server() as env:
        for _ in range(arguments.repeats):
            artifacts = tempfile.mkdtemp(prefix="bench-overhead-")
            plain = [
                sys.executable,
                __file__,
                "--data-dir",
                arguments.data_dir,
                "--limit",
                str(arguments.limit),
                "--plain",
                f"{artifacts}/plain",
            ]
            walls["plain"].append(run_measured(plain, env={**env, "MNIST_ARTIFACTS_DIR": f"{artifacts}/a"}).wall)
            flow = [
                str(Path(sys.executable).with_name("mnist-pipeline")),
                "cv",
                "--folds",
                str(FOLDS),
                "--epochs",
                str(EPOCHS),
                "--limit",
                str(arguments.limit),
            ]
            flow += ["--data-dir", arguments.data_dir, "--output", f"{artifacts}/flow"]
            walls["flow"].append(run_measured(flow, env={**env, "MNIST_ARTIFACTS_DIR": f"{artifacts}/b"}).wall)
    plain, flow = statistics.median(walls["plain"]), statistics.median(walls["flow"])
    allowed = 0.05 * plain + 3
    print(f"Before: {before}. After: {conditions()}.\n")
    print("| run | wall (s), each run | median (s) |\n|---|---|---|")
    for name, label in (("plain", "same work without Prefect"), ("flow", "cross-validate flow")):
        print(
            f"| {label} | {' / '.join(f'{wall:.1f}' for wall in walls[name])} | {statistics.median(walls[name]):.1f} |"
        )
    print(
        f"\nOverhead: {flow - plain:+.1f} s ({100 * (flow - plain) / plain:+.0f}%); target at most 5% + 3 s = {allowed:.1f} s: {'met' if flow - plain <= allowed else 'not met'}."
    )


if __name__ == "__main__":
    main()
