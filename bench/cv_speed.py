"""Cross-validation speed: (a) the study's loop against (b) the cross-validate flow, same data and config.

    MNIST_DATA_DIR=... .venv/bin/python bench/cv_speed.py [--epochs 1,2] [--folds 5] [--workers 2,3]

(a) one process loops over the folds with `model.fit` then `model.evaluate`, TensorFlow's default
threads, as the study does. (b) `mnist-pipeline cv` with its default runner, a fresh array cache,
reporting to a Prefect server started once before the runs. Both use all 60,000 training images,
KFold(5, shuffle, random_state=1), seed 1 + fold, batch 32, SGD(0.01, 0.9). For each epoch count,
(a) and (b) run back to back (then any --workers variants of (b)), so that both see the same load.
Prints a Markdown table and writes it to artifacts/bench/cv_speed.md.
"""

import argparse
import json
import os
import re
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from measure import Measured, conditions, megabytes, prefect_server, run_measured

FOLDS_SEED = 1


def study_loop(epochs: int, folds: int, model_name: str, data_dir: str) -> None:
    """(a), run in its own process: prints accuracies, FLOPs per image and phase times as JSON."""
    started = time.perf_counter()
    import keras
    from sklearn.model_selection import KFold

    from mnist_pipeline.mnist import read_directory
    from mnist_pipeline.models import build_model

    imported = time.perf_counter()
    data = read_directory(Path(data_dir))
    x = data.train_images.reshape((-1, 28, 28, 1)).astype("float32") / 255.0
    y = keras.utils.to_categorical(data.train_labels)
    accuracies, fit_seconds = [], []
    for fold, (train_ix, test_ix) in enumerate(KFold(folds, shuffle=True, random_state=FOLDS_SEED).split(x), start=1):
        keras.utils.set_random_seed(FOLDS_SEED + fold)
        model = build_model(model_name)
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
        )
        fit_started = time.perf_counter()
        model.fit(
            x[train_ix], y[train_ix], epochs=epochs, batch_size=32, validation_data=(x[test_ix], y[test_ix]), verbose=0
        )
        fit_seconds.append(time.perf_counter() - fit_started)
        _, accuracy = model.evaluate(x[test_ix], y[test_ix], verbose=0)
        accuracies.append(float(accuracy))
    print(
        json.dumps(
            {
                "accuracies": accuracies,
                "flops_per_image": forward_flops(model),
                "import_seconds": imported - started,
                "fit_seconds": fit_seconds,
            }
        )
    )


def forward_flops(model) -> int:
    """Multiply-adds x 2 of one image's forward pass through the Conv2D and Dense layers."""
    from keras import layers

    flops = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            kernel_height, kernel_width, channels, filters = layer.kernel.shape
            _, height, width, _ = layer.output.shape
            flops += 2 * height * width * filters * kernel_height * kernel_width * channels
        elif isinstance(layer, layers.Dense):
            flops += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
    return flops


def matmul_gflops() -> None:
    """What the cores reach on a large float32 matmul with TensorFlow's default threads."""
    import tensorflow as tf

    x = tf.random.normal((2048, 2048))
    tf.matmul(x, x).numpy()
    started = time.perf_counter()
    for _ in range(20):
        result = tf.matmul(x, x)
    result.numpy()
    print(json.dumps({"gflops": 20 * 2 * 2048**3 / (time.perf_counter() - started) / 1e9}))


def flow_run(
    epochs: int, folds: int, model_name: str, data_dir: str, workers: int | None, env: dict[str, str]
) -> tuple[Measured, dict]:
    """(b): the CLI in a fresh process with a fresh artifacts directory (a cold array cache)."""
    artifacts = tempfile.mkdtemp(prefix="bench-cv-")
    command = [
        str(Path(sys.executable).with_name("mnist-pipeline")),
        "cv",
        "--model",
        model_name,
        "--folds",
        str(folds),
        "--epochs",
        str(epochs),
    ]
    command += ["--data-dir", data_dir, "--output", f"{artifacts}/run"] + (
        ["--workers", str(workers)] if workers else []
    )
    started = datetime.now()
    measured = run_measured(command, env={**env, "MNIST_ARTIFACTS_DIR": artifacts})
    return measured, json.loads(Path(artifacts, "run", "metrics.json").read_text()) | {
        "timeline": timeline(measured.stdout, started)
    }


MILESTONES = {
    "flow started": r"Beginning flow run",
    "data ready": r"Task run 'normalize_images-\w+' - Finished",
    "first epoch logged": r"Task run 'train-fold-\d+' - fold",
    "folds done": r"Task run 'train-fold-\d+' - Finished",
    "flow done": r"Flow run '.*' - Finished",
}


def timeline(log: str, started: datetime) -> str:
    """Seconds from the command's start to the last log line of each milestone (the first, for epochs)."""
    seen: dict[str, float] = {}
    for line in log.splitlines():
        stamp = re.match(r"(\d\d:\d\d:\d\d\.\d+) \|", line)
        for name, pattern in MILESTONES.items() if stamp else ():
            if re.search(pattern, line) and not (name == "first epoch logged" and name in seen):
                clock = datetime.combine(started.date(), datetime.strptime(stamp[1], "%H:%M:%S.%f").time())
                seen[name] = (clock - started).total_seconds()
    return ", ".join(f"{name} {seconds:.1f} s" for name, seconds in seen.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", default="1,2")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--model", default="baseline")
    parser.add_argument("--workers", default="", help="extra runs of (b) with these --workers values")
    parser.add_argument("--data-dir", default=os.environ.get("MNIST_DATA_DIR"))
    parser.add_argument("--study-loop", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--matmul", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.study_loop:
        return study_loop(int(arguments.epochs), arguments.folds, arguments.model, arguments.data_dir)
    if arguments.matmul:
        return matmul_gflops()
    if not arguments.data_dir:
        parser.error("set MNIST_DATA_DIR or --data-dir to a folder with the MNIST files")

    python = [
        sys.executable,
        __file__,
        "--data-dir",
        arguments.data_dir,
        "--folds",
        str(arguments.folds),
        "--model",
        arguments.model,
    ]
    peak = json.loads(run_measured([*python, "--matmul"]).stdout.strip().splitlines()[-1])["gflops"]
    rows, folds_lines = [], []
    before = conditions()
    with prefect_server() as env:
        for epochs in [int(value) for value in arguments.epochs.split(",")]:
            study = run_measured([*python, "--study-loop", "--epochs", str(epochs)])
            result = json.loads(study.stdout.strip().splitlines()[-1])
            n = 60_000
            work = (
                arguments.folds
                * epochs
                * (n * (arguments.folds - 1) / arguments.folds * 3 + n / arguments.folds)
                * result["flops_per_image"]
            )
            rows.append(row(f"{epochs}", "(a) study loop", study, study.wall, work, peak))
            folds_lines.append(f"- {epochs} epoch(s), (a): " + folds_line(result["accuracies"], result["fit_seconds"]))
            for workers in [None] + [int(value) for value in arguments.workers.split(",") if value]:
                flow, metrics = flow_run(epochs, arguments.folds, arguments.model, arguments.data_dir, workers, env)
                label = "(b) flow, default" if workers is None else f"(b) flow, --workers {workers}"
                rows.append(row(f"{epochs}", label, flow, study.wall, work, peak))
                folds = metrics["folds"]
                folds_lines.append(
                    f"- {epochs} epoch(s), {label}: "
                    + folds_line([f["accuracy"] for f in folds], [f["seconds"] for f in folds])
                )
                folds_lines.append(f"  - timeline: {metrics['timeline']}, process exit {flow.wall:.1f} s")
    header = [
        f"Before: {before}. After: {conditions()}. Large matmul: {peak:.0f} GFLOP/s.",
        "",
        "| epochs | run | wall (s) | / (a) | CPU (s) | peak RSS: main | peak RSS: each worker | GFLOP/s | % of matmul |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    table = "\n".join(header + rows + ["", "Per-fold accuracy in % (model.fit seconds):", *folds_lines])
    print(table)
    from mnist_pipeline import files, settings

    print(f"Written to {files.write_bytes(settings.artifacts_dir() / 'bench' / 'cv_speed.md', table.encode())}")


def folds_line(accuracies: list[float], seconds: list[float]) -> str:
    return ", ".join(f"{100 * accuracy:.2f} ({fit:.0f} s)" for accuracy, fit in zip(accuracies, seconds))


def row(epochs: str, label: str, measured: Measured, study_wall: float, work: float, peak: float) -> str:
    workers = measured.peaks("worker")
    rate = work / measured.wall / 1e9
    return (
        f"| {epochs} | {label} | {measured.wall:.1f} | {measured.wall / study_wall:.2f} | {measured.cpu:.1f} "
        f"| {megabytes(max(measured.peaks('main')))} | {', '.join(megabytes(value) for value in workers) or '-'} "
        f"| {rate:.1f} | {100 * rate / peak:.0f}% |"
    )


if __name__ == "__main__":
    main()
