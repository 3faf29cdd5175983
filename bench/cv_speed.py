"""Speed of the command line against the study's own loop: the rows of issue 15, both sides interleaved.

    MNIST_DATA_DIR=... .venv/bin/python bench/cv_speed.py [--rows baseline-1,cached,deeper-1,predict] [--repeats 3]

Rows (all 60,000 training images, KFold(5, shuffle, random_state=1), seed 1 + fold, batch 32, SGD(0.01, 0.9)):
- baseline-1, baseline-10, deeper-1: (a) the study's loop in one process (`model.fit` then `model.evaluate`
  per fold, TensorFlow's default threads) against (b) `mnist-pipeline cv --model M --epochs E`, a cold
  command line: no Prefect server running (the command starts its temporary one), a fresh array cache.
- cached: `mnist-pipeline cv` of baseline-1 again on a finished run's artifacts (every fold Cached).
- predict: `mnist-pipeline predict one.png`, cold, on a baseline champion.
Every command line runs with one Prefect home, used once before the runs (a returning user's). Each repeat
runs every row, (a) and (b) back to back, in alternating order; the table gives medians and [min-max] of
wall seconds, CPU seconds of the whole process tree and the median of the repeats' (b)/(a) ratios.
Prints the Markdown table and writes it to artifacts/bench/cv_speed.md.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from measure import Measured, conditions, run_measured

FOLDS = 5
FOLDS_SEED = 1
CV_ROWS = {"baseline-1": ("baseline", 1), "baseline-10": ("baseline", 10), "deeper-1": ("deeper", 1)}
ROWS = [*CV_ROWS, "cached", "predict"]
TITLES = {
    "baseline-1": "baseline, 5 folds, 1 epoch, all 60,000 images, cold CLI",
    "baseline-10": "baseline, 5 folds, the study's 10 epochs, cold CLI",
    "deeper-1": "deeper, 5 folds, 1 epoch, cold CLI",
    "cached": "the same CV again (baseline, 1 epoch), every fold Cached",
    "predict": "`mnist-pipeline predict one.png` (baseline champion), cold CLI",
}
GOALS = {"baseline-1": "<= 0.8", "baseline-10": "<= 0.6", "deeper-1": "<= 1.0", "cached": "<= 6 s", "predict": "<= 5 s"}
CLI = str(Path(sys.executable).with_name("mnist-pipeline"))


def study_loop(epochs: int, model_name: str, data_dir: str) -> None:
    """(a), run in its own process: prints the fold accuracies and model.fit seconds as JSON."""
    import keras
    from sklearn.model_selection import KFold

    from mnist_pipeline.mnist import read_directory
    from mnist_pipeline.models import build_model

    data = read_directory(Path(data_dir))
    x = data.train_images.reshape((-1, 28, 28, 1)).astype("float32") / 255.0
    y = keras.utils.to_categorical(data.train_labels)
    accuracies, fit_seconds = [], []
    for fold, (train_ix, test_ix) in enumerate(KFold(FOLDS, shuffle=True, random_state=FOLDS_SEED).split(x), start=1):
        keras.utils.set_random_seed(FOLDS_SEED + fold)
        model = build_model(model_name)
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
        )
        started = time.perf_counter()
        model.fit(
            x[train_ix], y[train_ix], epochs=epochs, batch_size=32, validation_data=(x[test_ix], y[test_ix]), verbose=0
        )
        fit_seconds.append(time.perf_counter() - started)
        _, accuracy = model.evaluate(x[test_ix], y[test_ix], verbose=0)
        accuracies.append(float(accuracy))
    print(json.dumps({"accuracies": accuracies, "fit_seconds": fit_seconds}))


def cold_environment(prefect_home: str, artifacts: str) -> dict[str, str]:
    """A returning user's shell: no PREFECT_API_URL (so the command starts a temporary server). The server may
    take longer than Prefect's 20 s to answer on a busy machine, or the first time (it creates its database)."""
    environment = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    return environment | {
        "PREFECT_HOME": prefect_home,
        "MNIST_ARTIFACTS_DIR": artifacts,
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    }


def cv_command(model: str, epochs: int, data_dir: str, output: str) -> list[str]:
    return [CLI, "cv", "--model", model, "--folds", str(FOLDS), "--epochs", str(epochs)] + [
        "--data-dir",
        data_dir,
        "--output",
        output,
    ]


MILESTONES = {
    "server up": r"Beginning flow run",
    "data ready": r"Task run 'normalize_images-\w+' - Finished",
    "first epoch": r"Task run 'train-fold-\d+' - fold",
    "folds done": r"Task run 'train-fold-\d+' - Finished",
    "flow done": r"Flow run '.*' - Finished",
}


def timeline(log: str, started: datetime) -> str:
    """Seconds from the command's start to the last log line of each milestone (the first, for epochs)."""
    seen: dict[str, float] = {}
    for line in log.splitlines():
        stamp = re.match(r"(\d\d:\d\d:\d\d\.\d+) \|", line)
        for name, pattern in MILESTONES.items() if stamp else ():
            if re.search(pattern, line) and not (name == "first epoch" and name in seen):
                clock = datetime.combine(started.date(), datetime.strptime(stamp[1], "%H:%M:%S.%f").time())
                seen[name] = (clock - started).total_seconds()
    return ", ".join(f"{name} {seconds:.1f}" for name, seconds in seen.items())


class Bench:
    def __init__(self, data_dir: str):
        self.data_dir = data_dir
        self.prefect_home = tempfile.mkdtemp(prefix="bench-prefect-home-")
        self.predict_artifacts = tempfile.mkdtemp(prefix="bench-predict-")
        self.cached_artifacts = ""
        self.notes: list[str] = []

    def prepare(self, rows: list[str]) -> None:
        """The Prefect home used once, a baseline champion for `predict`, a finished CV for `cached`."""
        image = Path(self.predict_artifacts, "one.png")
        run_measured([sys.executable, __file__, "--data-dir", self.data_dir, "--write-digit", str(image)])
        environment = cold_environment(self.prefect_home, self.predict_artifacts)
        finalize = [CLI, "finalize", "--model", "baseline", "--limit", "2000", "--epochs", "1", "--data-dir"]
        run_measured([*finalize, self.data_dir], env=environment)
        run_measured([CLI, "promote", "latest", "--reason", "the bench's champion"], env=environment)
        if "cached" in rows:
            self.cached_artifacts = tempfile.mkdtemp(prefix="bench-cached-")
            command = cv_command("baseline", 1, self.data_dir, f"{self.cached_artifacts}/first")
            run_measured(command, env=cold_environment(self.prefect_home, self.cached_artifacts))

    def loop(self, row: str) -> Measured:
        model, epochs = CV_ROWS[row]
        command = [sys.executable, __file__, "--study-loop", "--model", model, "--epochs", str(epochs)]
        measured = run_measured([*command, "--data-dir", self.data_dir])
        result = json.loads(measured.stdout.strip().splitlines()[-1])
        self.notes.append(f"- {row}, (a) loop: {folds_line(result['accuracies'], result['fit_seconds'])}")
        return measured

    def flow(self, row: str) -> Measured:
        if row == "predict":
            command = [CLI, "predict", str(Path(self.predict_artifacts, "one.png"))]
            return run_measured(command, env=cold_environment(self.prefect_home, self.predict_artifacts))
        if row == "cached":
            artifacts, (model, epochs) = self.cached_artifacts, CV_ROWS["baseline-1"]
        else:
            artifacts, (model, epochs) = tempfile.mkdtemp(prefix="bench-cv-"), CV_ROWS[row]
        output = tempfile.mkdtemp(dir=artifacts, prefix="run-")
        started = datetime.now()
        measured = run_measured(
            cv_command(model, epochs, self.data_dir, output), env=cold_environment(self.prefect_home, artifacts)
        )
        folds = json.loads(Path(output, "metrics.json").read_text())["folds"]
        if row != "cached":
            shutil.rmtree(artifacts)  # its array cache: 280 MB a run
        self.notes.append(
            f"- {row}, (b) flow: {folds_line([f['accuracy'] for f in folds], [f['seconds'] for f in folds])}; "
            f"s from start: {timeline(measured.stdout, started)}, exit {measured.wall:.1f}"
        )
        return measured

    def run(self, rows: list[str], repeats: int) -> tuple[dict, dict]:
        """Wall and CPU seconds per (row, side): each repeat runs every row, its sides in alternating order."""
        walls: dict[tuple[str, str], list[float]] = {}
        cpus: dict[tuple[str, str], list[float]] = {}
        for repeat in range(repeats):
            for row in rows:
                sides = ["loop", "flow"] if row in CV_ROWS else ["flow"]
                for side in sides if repeat % 2 == 0 else reversed(sides):
                    measured = getattr(self, side)(row)
                    walls.setdefault((row, side), []).append(measured.wall)
                    cpus.setdefault((row, side), []).append(measured.cpu)
                    print(
                        f"repeat {repeat + 1}, {row}, {side}: {measured.wall:.1f} s, CPU {measured.cpu:.1f} s",
                        flush=True,
                    )
        return walls, cpus


def folds_line(accuracies: list[float], seconds: list[float]) -> str:
    return ", ".join(f"{100 * accuracy:.2f} ({fit:.0f} s)" for accuracy, fit in zip(accuracies, seconds))


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} [{min(values):.1f}-{max(values):.1f}]" if values else "-"


def ratio(flow: list[float], loop: list[float]) -> str:
    if not loop:
        return "-"
    ratios = [b / a for a, b in zip(loop, flow)]
    return f"**{statistics.median(ratios):.2f}** [{min(ratios):.2f}-{max(ratios):.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of {', '.join(ROWS)}")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("MNIST_DATA_DIR"))
    parser.add_argument("--model", default="baseline", help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--study-loop", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--write-digit", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if not arguments.data_dir:
        parser.error("set MNIST_DATA_DIR or --data-dir to a folder with the MNIST files")
    if arguments.study_loop:
        return study_loop(arguments.epochs, arguments.model, arguments.data_dir)
    if arguments.write_digit:
        return write_digit(arguments.data_dir, arguments.write_digit)
    rows = arguments.rows.split(",")
    if unknown := set(rows) - set(ROWS):
        parser.error(f"unknown rows {sorted(unknown)}: choose from {', '.join(ROWS)}")

    bench = Bench(arguments.data_dir)
    before, started = conditions(), time.perf_counter()
    try:
        bench.prepare(rows)
        walls, cpus = bench.run(rows, arguments.repeats)
    finally:
        for folder in (bench.prefect_home, bench.predict_artifacts, bench.cached_artifacts):
            shutil.rmtree(folder, ignore_errors=True)
    lines = [
        f"{arguments.repeats} repeats, {time.perf_counter() - started:.0f} s in all. Before: {before}. "
        f"After: {conditions()}.",
        "",
        "| figure | the study's loop (s) | the flow (s) | flow / loop | goal | CPU s: loop / flow |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        loop, flow = walls.get((row, "loop"), []), walls[(row, "flow")]
        cpu = f"{spread(cpus.get((row, 'loop'), []))} / {spread(cpus[(row, 'flow')])}"
        lines.append(
            f"| {TITLES[row]} | {spread(loop)} | {spread(flow)} | {ratio(flow, loop)} | {GOALS[row]} | {cpu} |"
        )
    table = "\n".join(
        lines + ["", "Median [min-max] of the repeats. Per fold: accuracy in % (fit seconds):", *bench.notes]
    )
    print(table)
    from mnist_pipeline import files, settings

    print(f"Written to {files.write_bytes(settings.artifacts_dir() / 'bench' / 'cv_speed.md', table.encode())}")


def write_digit(data_dir: str, path: str) -> None:
    """The first test image as a PNG, dark ink on white paper as a scan would be."""
    from PIL import Image

    from mnist_pipeline.mnist import read_directory

    Image.fromarray(255 - read_directory(Path(data_dir)).test_images[0]).save(path)


if __name__ == "__main__":
    main()
