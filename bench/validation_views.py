"""What averaging buys on the validation split: each model `design_variants.py` kept, alone and over shifted
views of each image (test-time augmentation), and all of them averaged as one ensemble.

    MNIST_DATA_DIR=... .venv/bin/python bench/validation_views.py [--models adam-seed1,improved-seed1]
        [--validation 10000]

The models are read from artifacts/bench/variants/ (all of them by default); the split is the one they
were trained without. The views are the image itself and its shifts by one pixel, built from Keras's own
padding and cropping layers, so a model with views saves and loads in safe mode like any other. Prints a
Markdown table and writes it to artifacts/bench/validation_views.md.
"""

import argparse

import keras
import numpy as np
from accuracy import BENCH_DIR, validation_split, write_report
from keras import layers

from mnist_pipeline import settings
from mnist_pipeline.models import INPUT_SHAPE
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
    arguments = parser.parse_args()
    if not settings.data_dir():
        parser.error("set MNIST_DATA_DIR to the folder with the MNIST files")
    names = arguments.models.split(",") if arguments.models else sorted(p.stem for p in VARIANTS_DIR.glob("*.keras"))
    if not names:
        parser.error(f"no models in {VARIANTS_DIR}: run design_variants.py first")
    _, _, x_validation, y_validation = validation_split(arguments.validation, 1)
    labels = y_validation.argmax(axis=1)
    models = {name: keras.saving.load_model(VARIANTS_DIR / f"{name}.keras") for name in names}
    rows = [
        f"Validation accuracy (%) on {len(labels):,} held-out training images.",
        "",
        f"| views | {' | '.join(names)} | all {len(names)} averaged |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for views, shifts in VIEWS.items():
        probabilities = [
            with_views(model, shifts).predict(x_validation, batch_size=VALIDATION_BATCH_SIZE, verbose=0)
            for model in models.values()
        ]
        accuracies = [100 * np.mean(p.argmax(axis=1) == labels) for p in [*probabilities, np.mean(probabilities, 0)]]
        rows.append(f"| {views} | {' | '.join(f'{accuracy:.2f}' for accuracy in accuracies)} |")
        print(rows[-1], flush=True)
    write_report("validation_views", rows)


if __name__ == "__main__":
    main()
