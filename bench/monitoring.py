"""The monitor's false alarms and detection delays on seeded streams of MNIST test digits (docs/MONITORING.md).

    MNIST_DATA_DIR=/path/to/mnist .venv/bin/python bench/monitoring.py [--windows 200] [--seeds 10]

The model: the registry's champion if there is one, else a `baseline` trained here for one epoch. Its reference
comes from the reference half of the test set; every stream from the other half, through the same `judge` the
monitor flow calls. No shift: windows of several sizes, the share that alarms. Each shift: requests (labels for
the accuracy drop) until the first alarm, checked every STEP from the minimum window on, median over seeds.
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from measure import matmul_reference
from scipy import ndimage

from mnist_pipeline import mnist, settings
from mnist_pipeline.monitoring.reference import in_reference_half, model_reference
from mnist_pipeline.monitoring.verdict import Thresholds, Window, judge
from mnist_pipeline.preprocessing import ScalingStats, model_input

STEP = 25
LONGEST = 1000
ALARMS = ("drift", "degraded")


def trained_model(data: mnist.Mnist, folder: Path) -> tuple[Path, ScalingStats]:
    from mnist_pipeline.registry import default_registry

    registry = default_registry()
    champion = registry.champion()
    if champion:
        return registry.model_file(champion), ScalingStats(**registry.metadata(champion)["scaling"])
    from mnist_pipeline.models import build_model, compile_model

    unit = ScalingStats("unit", 0.0, 1.0)
    path = folder / "bench-baseline.keras"
    if path.is_file():  # trained by an earlier run of the bench
        return path, unit
    model = compile_model(build_model("baseline"), learning_rate=0.01)
    labels = np.eye(10, dtype=np.float32)[data.train_labels]
    model.fit(model_input(data.train_images, unit), labels, epochs=1, batch_size=32, verbose=0)
    folder.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path, unit


def shifted(images: np.ndarray, shift: str) -> np.ndarray:
    if shift == "rotated 30 degrees":
        return ndimage.rotate(images, 30, axes=(1, 2), reshape=False, order=1)
    if shift == "thicker strokes":
        return ndimage.grey_dilation(images, size=(1, 2, 2))
    if shift == "off-center, smaller":
        small = ndimage.zoom(images, (1, 0.7, 0.7), order=1)
        canvas = np.zeros_like(images)
        canvas[:, 2 : 2 + small.shape[1], 2 : 2 + small.shape[2]] = small
        return canvas
    return images


def wrong_answers(probabilities: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """`share` of the answers moved to another digit, with the same confidence."""
    changed = probabilities.copy()
    rows = np.flatnonzero(rng.random(len(changed)) < share)
    changed[rows] = np.roll(changed[rows], rng.integers(1, 10), axis=1)
    return changed


def stream(kind: str, images, labels, probabilities, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LONGEST requests of `kind`: (images, probabilities answered, true labels)."""
    if kind == "one digit half the traffic":
        threes = np.flatnonzero(labels == 3)
        order = np.where(rng.random(LONGEST) < 0.5, rng.choice(threes, LONGEST), rng.integers(0, len(labels), LONGEST))
    else:
        order = rng.choice(len(labels), LONGEST, replace=False)
    answered = probabilities[order]
    if kind == "10 points more wrong answers":
        answered = wrong_answers(answered, 0.10, rng)
    return images[order], answered, labels[order]


def window(images, probabilities, labels) -> Window:
    return Window(images, probabilities, probabilities.argmax(axis=1), labels)


def first_alarm(kind, images, labels, probabilities, reference, thresholds, seed) -> tuple[int | None, list[str]]:
    """Requests (labels, for the accuracy drop) until the first alarm, and the tests that alarmed then."""
    rng = np.random.default_rng(seed)
    digits, answered, truth = stream(kind, images, labels, probabilities, rng)
    labels_only = kind == "10 points more wrong answers"
    start = thresholds.min_labels if labels_only else thresholds.min_predictions
    for size in range(start, LONGEST + 1, STEP):
        if labels_only:  # all predictions of a long window, the first `size` of them labeled
            checked = Window(digits, answered, answered[:size].argmax(axis=1), truth[:size])
        else:
            checked = window(digits[:size], answered[:size], truth[:size])
        report = judge(checked, reference, thresholds, seed)
        if report.verdict in ALARMS:
            return size, [name for name, test in report.tests.items() if test.alarm]
    return None, []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=200, help="no-shift windows per size")
    parser.add_argument("--seeds", type=int, default=10, help="streams per shift")
    parser.add_argument("--alpha", type=float, default=Thresholds.alpha)
    parser.add_argument("--min-predictions", type=int, default=Thresholds.min_predictions)
    parser.add_argument("--min-labels", type=int, default=Thresholds.min_labels)
    parser.add_argument("--output", default="artifacts/bench-monitoring.json")
    parser.add_argument("--figure", default="", help="also draw the delays into this PNG (docs/monitoring-bench.png)")
    arguments = parser.parse_args()
    _, data = mnist.load(settings.data_dir(), settings.download_dir())
    half = in_reference_half(data.test_images)
    model_path, scaling = trained_model(data, settings.artifacts_dir())
    reference = model_reference(model_path, scaling, data.test_images, data.test_labels)
    images, labels = data.test_images[~half], data.test_labels[~half]
    from mnist_pipeline.models import load_checked_model

    model = load_checked_model(Path(model_path))
    thresholds = Thresholds(arguments.alpha, arguments.min_predictions, arguments.min_labels)
    results = {"load_average": os.getloadavg(), "reference_accuracy": reference.accuracy, "no_shift": {}, "shifts": {}}
    clean = model.predict(model_input(images, scaling), batch_size=512, verbose=0)
    for size in sorted({thresholds.min_predictions, 100, 300, 1000}):
        alarms = 0
        for seed in range(arguments.windows):
            rng = np.random.default_rng(10_000 + seed)
            rows = rng.choice(len(labels), size, replace=False)
            report = judge(window(images[rows], clean[rows], labels[rows]), reference, thresholds, seed)
            alarms += report.verdict in ALARMS
        results["no_shift"][size] = {"windows": arguments.windows, "alarm_share": alarms / arguments.windows}
        print(f"no shift, {size} predictions: {alarms} of {arguments.windows} windows alarmed", flush=True)
    kinds = ["rotated 30 degrees", "thicker strokes", "off-center, smaller"]
    for kind in [*kinds, "one digit half the traffic", "10 points more wrong answers"]:
        moved = shifted(images, kind)
        answered = clean if moved is images else model.predict(model_input(moved, scaling), batch_size=512, verbose=0)
        firsts = [first_alarm(kind, moved, labels, answered, reference, thresholds, s) for s in range(arguments.seeds)]
        delays = [delay for delay, _ in firsts]
        median = float(np.median(delays)) if None not in delays else None
        tests = sorted({name for _, names in firsts for name in names})
        results["shifts"][kind] = {"first_alarm": delays, "median": median, "tests": tests}
        print(f"{kind}: first alarm after {delays} (median {median}) by {tests}", flush=True)
    rows = np.random.default_rng(1).choice(len(labels), 10_000)
    large = window(images[rows], clean[rows], labels[rows])
    start = time.perf_counter()
    judge(large, reference, thresholds)
    results["seconds_for_10000"] = time.perf_counter() - start
    results["matmul_1000_seconds"] = matmul_reference(1000, time.perf_counter)
    results["load_average_after"] = os.getloadavg()
    print(json.dumps(results, indent=2))
    Path(arguments.output).parent.mkdir(parents=True, exist_ok=True)
    Path(arguments.output).write_text(json.dumps(results, indent=2))
    if arguments.figure:
        from mnist_pipeline.figures import png_bytes

        Path(arguments.figure).write_bytes(png_bytes(delays_figure(results, thresholds)))


def delays_figure(results: dict, thresholds: Thresholds):
    from matplotlib import pyplot

    figure, (left, right) = pyplot.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [2, 1]})
    for row, found in enumerate(results["shifts"].values()):
        delays = [LONGEST + STEP if delay is None else delay for delay in found["first_alarm"]]
        left.scatter(delays, np.full(len(delays), row) + np.linspace(-0.2, 0.2, len(delays)), s=12)
    left.set_yticks(range(len(results["shifts"])), list(results["shifts"]))
    left.axvline(300, color="gray", linestyle="--")
    left.set_xlabel("requests until the first alarm (labels for the accuracy drop)")
    sizes = list(results["no_shift"])
    right.bar([str(size) for size in sizes], [100 * results["no_shift"][size]["alarm_share"] for size in sizes])
    right.axhline(100 * thresholds.alpha, color="gray", linestyle="--")
    right.set_xlabel("no shift: window (predictions)")
    right.set_ylabel("windows that alarmed (%)")
    figure.tight_layout()
    return figure


if __name__ == "__main__":
    main()
