"""Compare variants of `improved`'s design on a validation split of the training images (never the test set).

    MNIST_DATA_DIR=... .venv/bin/python bench/design_variants.py --variants one-resampling,label-smoothing
        [--epochs 15] [--seeds 1] [--validation 10000] [--limit N]

Each variant is `improved` with one change, trained as `finalize` trains it (SGD at 0.05 along a cosine,
batches of 32) on the training images less the stratified validation split `choose_epochs.py` uses:
- `improved`: unchanged, the reference;
- `one-resampling`: the augmentation as one random affine transform (`RandomAffine`: rotation, zoom and
  shift composed) in place of three layers that each resample the image;
- `label-smoothing`: cross-entropy against targets smoothed by 0.1;
- changes joined by `+`, together.
Prints a Markdown table (validation accuracy per seed, mean, training time) and writes it to
artifacts/bench/improved_variants.md.
"""

import argparse
import math
import statistics
import time

import keras
from accuracy import validation_split, write_report
from keras import layers

from mnist_pipeline import settings

VARIANTS = ("improved", "one-resampling", "label-smoothing")


class RandomAffine(layers.Layer):
    """The augmentation of `augmentation()` as one transform: a rotation (up to `rotation` of a turn), a zoom
    (by up to `zoom`) and a shift (up to `shift` of the size), composed and applied by a single resampling,
    so a training image is interpolated once and keeps the sharpness of the test images. Training only."""

    def __init__(self, rotation=0.03, zoom=0.1, shift=0.1, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rotation, self.zoom, self.shift, self.seed = rotation, zoom, shift, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        ops = keras.ops
        count = ops.shape(images)[0]
        height, width = images.shape[1], images.shape[2]

        def uniform(bound):
            return keras.random.uniform((count,), -bound, bound, seed=self.seed_generator)

        angle = uniform(2 * math.pi * self.rotation)
        scale = 1.0 / (1.0 + uniform(self.zoom))  # output to input: a zoom in samples a smaller area
        cos, sin = ops.cos(angle) * scale, ops.sin(angle) * scale
        center_x, center_y = (width - 1) / 2, (height - 1) / 2
        shift_x, shift_y = uniform(self.shift) * width, uniform(self.shift) * height
        zeros = ops.zeros_like(angle)
        transform = ops.stack(
            [
                cos,
                -sin,
                center_x - cos * center_x + sin * center_y + shift_x,
                sin,
                cos,
                center_y - sin * center_x - cos * center_y + shift_y,
                zeros,
                zeros,
            ],
            axis=1,
        )
        return ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode="nearest")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "rotation": self.rotation,
            "zoom": self.zoom,
            "shift": self.shift,
            "seed": self.seed,
        }


def variant_model(variant: str, decay_steps: int):
    """`improved`, compiled as `finalize` compiles it, with the one change `variant` names."""
    from mnist_pipeline.models import INPUT_SHAPE, compile_model, improved

    changes = variant.split("+")
    model = improved()
    if "one-resampling" in changes:
        resampling = (keras.layers.RandomRotation, keras.layers.RandomZoom, keras.layers.RandomTranslation)
        kept = [layer for layer in model.layers if not isinstance(layer, resampling)]
        model = keras.Sequential([keras.Input(shape=INPUT_SHAPE), RandomAffine(), *kept], name="improved")
    model = compile_model(model, 0.05, decay_steps=decay_steps)
    if "label-smoothing" in changes:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)
        model.compile(optimizer=model.optimizer, loss=loss, metrics=["accuracy"])
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS[1:]), help=f"some of {', '.join(VARIANTS)}")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--validation", type=int, default=10_000)
    parser.add_argument("--limit", type=int, default=None, help="a stratified subset of the training images")
    arguments = parser.parse_args()
    variants = arguments.variants.split(",")
    if unknown := {change for variant in variants for change in variant.split("+")} - set(VARIANTS):
        parser.error(f"variants must be some of {', '.join(VARIANTS)}, got {', '.join(sorted(unknown))}")
    if not settings.data_dir():
        parser.error("set MNIST_DATA_DIR to the folder with the MNIST files")
    from mnist_pipeline.training import VALIDATION_BATCH_SIZE

    x_train, y_train, x_validation, y_validation = validation_split(arguments.validation, 1, arguments.limit)
    rows = [
        f"Training on {len(x_train):,} images for {arguments.epochs} epochs, validating on "
        f"{len(x_validation):,} held-out training images.",
        "",
        "| variant | validation accuracy (%) per seed | mean (%) | training time |",
        "|---|---|---|---|",
    ]
    for variant in variants:
        accuracies, seconds = [], []
        for seed in [int(seed) for seed in arguments.seeds.split(",")]:
            keras.utils.set_random_seed(seed)
            model = variant_model(variant, arguments.epochs * math.ceil(len(x_train) / 32))
            started = time.perf_counter()
            history = model.fit(
                x_train,
                y_train,
                epochs=arguments.epochs,
                batch_size=32,
                validation_data=(x_validation, y_validation),
                validation_batch_size=VALIDATION_BATCH_SIZE,
                verbose=0,
            )
            seconds.append(time.perf_counter() - started)
            accuracies.append(100 * history.history["val_accuracy"][-1])
            print(f"{variant} seed {seed}: {accuracies[-1]:.2f}% in {seconds[-1] / 60:.1f} min", flush=True)
        rows.append(
            f"| {variant} | {', '.join(f'{accuracy:.2f}' for accuracy in accuracies)} "
            f"| {statistics.mean(accuracies):.3f} | {statistics.mean(seconds) / 60:.1f} min |"
        )
    write_report("improved_variants", rows)


if __name__ == "__main__":
    main()
