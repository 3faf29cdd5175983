"""What averaging buys on the validation split: each model `design_variants.py` kept, alone and over shifted
views of each image (test-time augmentation), and every group of two or more of them averaged as an ensemble.

    MNIST_DATA_DIR=... .venv/bin/python bench/validation_views.py [--models adam-seed1,improved-seed1]
        [--validation 10000] [--test]

With --test the same table is made on the 10,000 test images, to report what the models do there once their
settings are chosen (never to choose them), with the per-class figures, misclassified digits and confusion
matrix of all the models averaged (artifacts/bench/validation_models_test*).

The models are read from artifacts/bench/variants/ (all of them by default); the split is the one they
were trained without. The views are the image itself and its shifts by one pixel, built from Keras's own
padding and cropping layers, so a model with views saves and loads in safe mode like any other. Prints a
Markdown table and writes it to artifacts/bench/validation_views.md (validation_views_test.md with --test).
"""

import argparse
import itertools

import keras
import numpy as np
from accuracy import BENCH_DIR, per_class_rows, validation_split, write_report
from keras import layers

from mnist_pipeline import figures, files, settings
from mnist_pipeline.evaluation import test_metrics
from mnist_pipeline.mnist import read_directory
from mnist_pipeline.models import INPUT_SHAPE
from mnist_pipeline.preprocessing import add_channel_axis, apply_scaling, fit_scaling
from mnist_pipeline.training import VALIDATION_BATCH_SIZE

VARIANTS_DIR = BENCH_DIR / "variants"
VIEWS = {
    "1 view": [(0, 0)],
    "5 views (shifts of 1 pixel along each axis)": [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)],
    "9 views (shifts of 1 pixel, diagonals too)": [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)],
}


def shifted(images, down: int, right: int):
    """`images` moved `down` and `right` pixels (each -1, 0 or 1), with background (0) moved in."""
    padded = layers.ZeroPadding2D(((1, 1), (1, 1)))(images)
    return layers.Cropping2D(((1 - down, 1 + down), (1 - right, 1 + right)))(padded)


def with_views(model: keras.Model, shifts: list[tuple[int, int]]) -> keras.Model:
    """`model`'s softmax averaged over the shifted views of its input."""
    if shifts == [(0, 0)]:
        return model
    images = keras.Input(shape=INPUT_SHAPE)
    outputs = [model(shifted(images, down, right)) for down, right in shifts]
    return keras.Model(images, layers.Average()(outputs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=None, help="names in artifacts/bench/variants/, without .keras")
    parser.add_argument("--validation", type=int, default=10_000)
    parser.add_argument("--test", action="store_true", help="score on the test images, to report only")
    arguments = parser.parse_args()
    if not settings.data_dir():
        parser.error("set MNIST_DATA_DIR to the folder with the MNIST files")
    names = arguments.models.split(",") if arguments.models else sorted(p.stem for p in VARIANTS_DIR.glob("*.keras"))
    if not names:
        parser.error(f"no models in {VARIANTS_DIR}: run design_variants.py first")
    if missing := [name for name in names if not (VARIANTS_DIR / f"{name}.keras").is_file()]:
        parser.error(f"models must be files in {VARIANTS_DIR}, got {', '.join(missing)}: run design_variants.py")
    if arguments.test:
        test = read_directory(settings.data_dir())
        stats = fit_scaling(test.train_images, "unit")  # as validation_split scales, for these models
        images, labels = apply_scaling(add_channel_axis(test.test_images), stats), test.test_labels
    else:
        _, _, images, one_hot_labels = validation_split(arguments.validation, 1)
        labels = one_hot_labels.argmax(axis=1)
    models = {name: keras.saving.load_model(VARIANTS_DIR / f"{name}.keras") for name in names}
    probabilities = {
        views: {
            name: with_views(model, shifts).predict(images, batch_size=VALIDATION_BATCH_SIZE, verbose=0)
            for name, model in models.items()
        }
        for views, shifts in VIEWS.items()
    }

    def accuracy(views: str, group: tuple[str, ...]) -> str:
        averaged = np.mean([probabilities[views][name] for name in group], axis=0)
        return f"{100 * np.mean(averaged.argmax(axis=1) == labels):.2f}"

    groups = [group for size in range(1, len(names) + 1) for group in itertools.combinations(names, size)]
    scored = (
        f"Test accuracy (%) on the {len(labels):,} test images"
        if arguments.test
        else f"Validation accuracy (%) on {len(labels):,} held-out training images"
    )
    rows = [
        f"{scored}, of each model and of each group of models averaged.",
        "",
        f"| models | {' | '.join(VIEWS)} |",
        "|---|" + "---|" * len(VIEWS),
        *(f"| {' + '.join(group)} | {' | '.join(accuracy(views, group) for views in VIEWS)} |" for group in groups),
    ]
    if arguments.test:
        rows += all_models_section(np.mean(list(probabilities["1 view"].values()), axis=0), images, labels)
    write_report("validation_views_test" if arguments.test else "validation_views", rows)


def all_models_section(probabilities: np.ndarray, images: np.ndarray, labels: np.ndarray) -> list[str]:
    """Markdown: the per-class test figures of the models averaged, with their misclassified digits and confusion
    matrix saved beside the report, as `evaluate` draws them."""
    metrics = test_metrics(probabilities, labels)
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)[:9]
    drawn = {
        "misclassified": figures.image_grid(
            images[wrong], [f"true {labels[i]}, predicted {predicted[i]}" for i in wrong]
        ),
        "confusion_matrix": figures.confusion_matrix_figure(np.asarray(metrics["confusion_matrix"])),
    }
    lines = ["", f"All the models averaged: loss {metrics['loss']:.4f}; per class:", "", *per_class_rows(metrics)]
    for name, figure in drawn.items():
        path = files.write_bytes(BENCH_DIR / f"validation_models_test_{name}.png", figures.png_bytes(figure))
        lines.append(f"\n{name.replace('_', ' ').capitalize()}: {path}")
    return lines


if __name__ == "__main__":
    main()
