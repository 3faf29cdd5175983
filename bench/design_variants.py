"""Compare variants of `improved`'s design on a validation split of the training images (never the test set).

    MNIST_DATA_DIR=... .venv/bin/python bench/design_variants.py --variants one-resampling,label-smoothing
        [--epochs 15] [--seeds 1] [--validation 10000] [--limit N]

Each variant is `improved` with one change, trained as `finalize` trains it (SGD at 0.05 along a cosine,
batches of 32) on the training images less the stratified validation split `choose_epochs.py` uses:
- `improved`: unchanged, the reference;
- `one-resampling`: the augmentation as one random affine transform (`RandomAffine`: rotation, zoom and
  shift composed) in place of three layers that each resample the image;
- `elastic`: the same single resampling with an elastic distortion added (Simard et al. 2003);
- `label-smoothing`: cross-entropy against targets smoothed by 0.1;
- `dropout-0.2`: every dropout at 0.2 instead of 0.4;
- `batch-64`: batches of 64 at twice the learning rate (0.1), half the steps;
- `adam`: Adam at 0.001 along the same cosine, in place of SGD with momentum (Deotte's optimizer);
- changes joined by `+`, together.
Prints a Markdown table (validation accuracy per seed, mean, training time) and writes it to
artifacts/bench/improved_variants.md; each trained model is kept as artifacts/bench/variants/<variant>-seed<seed>.keras
for `validation_views.py`.
"""

import argparse
import math
import statistics
import time

import keras
from accuracy import BENCH_DIR, validation_split, write_report
from keras import layers

from mnist_pipeline import files, settings

VARIANTS = ("improved", "one-resampling", "elastic", "label-smoothing", "dropout-0.2", "batch-64", "adam")


class RandomAffine(layers.Layer):
    """The augmentation of `augmentation()` as one transform: a rotation (up to `rotation` of a turn), a zoom
    (by up to `zoom`) and a shift (up to `shift` of the size), composed and applied by a single resampling,
    so a training image is interpolated once and keeps the sharpness of the test images. Training only.

    With `elastic_alpha`, an elastic distortion joins the same resampling (Simard, Steinkraus and Platt
    2003): each pixel moves by a field of uniform noise in [-1, 1] smoothed by a Gaussian of
    `elastic_sigma` pixels and scaled by `elastic_alpha` (their 34 and 4: about 1.4 pixels on average)."""

    def __init__(self, rotation=0.03, zoom=0.1, shift=0.1, elastic_alpha=0.0, elastic_sigma=4.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rotation, self.zoom, self.shift, self.seed = rotation, zoom, shift, seed
        self.elastic_alpha, self.elastic_sigma = elastic_alpha, elastic_sigma
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
        offset_x = center_x - cos * center_x + sin * center_y + shift_x
        offset_y = center_y - sin * center_x - cos * center_y + shift_y
        if not self.elastic_alpha:
            zeros = ops.zeros_like(angle)
            transform = ops.stack([cos, -sin, offset_x, sin, cos, offset_y, zeros, zeros], axis=1)
            return ops.image.affine_transform(images, transform, interpolation="bilinear", fill_mode="nearest")
        grid_y, grid_x = ops.meshgrid(
            ops.arange(height, dtype="float32"), ops.arange(width, dtype="float32"), indexing="ij"
        )
        column = (slice(None), None, None)
        source_x = cos[column] * grid_x - sin[column] * grid_y + offset_x[column]
        source_y = sin[column] * grid_x + cos[column] * grid_y + offset_y[column]
        displacement = self.elastic_displacement(count, height, width)
        return self.sample(images, source_x + displacement[..., 0], source_y + displacement[..., 1])

    def elastic_displacement(self, count, height, width):
        """(count, height, width, 2) pixel displacements: smoothed uniform noise times `elastic_alpha`."""
        ops = keras.ops
        noise = keras.random.uniform((count, height, width, 2), -1.0, 1.0, seed=self.seed_generator)
        radius = math.ceil(3 * self.elastic_sigma)
        taps = ops.exp(-0.5 * (ops.arange(-radius, radius + 1, dtype="float32") / self.elastic_sigma) ** 2)
        taps = taps / ops.sum(taps)
        vertical = ops.tile(ops.reshape(taps, (-1, 1, 1, 1)), (1, 1, 2, 1))
        horizontal = ops.tile(ops.reshape(taps, (1, -1, 1, 1)), (1, 1, 2, 1))
        smooth = ops.depthwise_conv(ops.depthwise_conv(noise, vertical, padding="same"), horizontal, padding="same")
        return self.elastic_alpha * smooth

    @staticmethod
    def sample(images, source_x, source_y):
        """`images` read bilinearly at (source_x, source_y) per output pixel; outside, the nearest edge pixel."""
        ops = keras.ops
        count, height, width, channels = ops.shape(images)[0], images.shape[1], images.shape[2], images.shape[3]
        source_x = ops.clip(source_x, 0.0, width - 1.0)
        source_y = ops.clip(source_y, 0.0, height - 1.0)
        left, top = ops.floor(source_x), ops.floor(source_y)
        right_weight, bottom_weight = (source_x - left)[..., None], (source_y - top)[..., None]
        left, top = ops.cast(left, "int32"), ops.cast(top, "int32")
        right, bottom = ops.minimum(left + 1, width - 1), ops.minimum(top + 1, height - 1)
        base = ops.reshape(ops.arange(count, dtype="int32") * (height * width), (-1, 1, 1))
        pixels = ops.reshape(images, (-1, channels))

        def read(row, column):
            return ops.take(pixels, base + row * width + column, axis=0)

        upper = read(top, left) * (1 - right_weight) + read(top, right) * right_weight
        lower = read(bottom, left) * (1 - right_weight) + read(bottom, right) * right_weight
        return upper * (1 - bottom_weight) + lower * bottom_weight

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "rotation": self.rotation,
            "zoom": self.zoom,
            "shift": self.shift,
            "elastic_alpha": self.elastic_alpha,
            "elastic_sigma": self.elastic_sigma,
            "seed": self.seed,
        }


def batch_size(variant: str) -> int:
    return 64 if "batch-64" in variant.split("+") else 32


def variant_model(variant: str, decay_steps: int):
    """`improved`, compiled as `finalize` compiles it, with the one change `variant` names."""
    from mnist_pipeline.models import INPUT_SHAPE, compile_model, improved

    changes = variant.split("+")
    model = improved()
    for layer in model.layers if "dropout-0.2" in changes else []:
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.2
    if "one-resampling" in changes or "elastic" in changes:
        resampling = (keras.layers.RandomRotation, keras.layers.RandomZoom, keras.layers.RandomTranslation)
        kept = [layer for layer in model.layers if not isinstance(layer, resampling)]
        augmentation = RandomAffine(elastic_alpha=34.0 if "elastic" in changes else 0.0)
        model = keras.Sequential([keras.Input(shape=INPUT_SHAPE), augmentation, *kept], name="improved")
    model = compile_model(model, 0.05 * batch_size(variant) / 32, decay_steps=decay_steps)
    if "adam" in changes or "label-smoothing" in changes:
        optimizer, loss = model.optimizer, model.loss
        if "adam" in changes:
            optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(0.001, decay_steps))
        if "label-smoothing" in changes:
            loss = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)
        model.compile(optimizer, loss, metrics=["accuracy"], steps_per_execution=model.steps_per_execution)
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
            model = variant_model(variant, arguments.epochs * math.ceil(len(x_train) / batch_size(variant)))
            started = time.perf_counter()
            history = model.fit(
                x_train,
                y_train,
                epochs=arguments.epochs,
                batch_size=batch_size(variant),
                validation_data=(x_validation, y_validation),
                validation_batch_size=VALIDATION_BATCH_SIZE,
                verbose=0,
            )
            seconds.append(time.perf_counter() - started)
            accuracies.append(100 * history.history["val_accuracy"][-1])
            with files.replacing(BENCH_DIR / "variants" / f"{variant}-seed{seed}.keras") as path:
                model.save(path)
            print(f"{variant} seed {seed}: {accuracies[-1]:.2f}% in {seconds[-1] / 60:.1f} min", flush=True)
        rows.append(
            f"| {variant} | {', '.join(f'{accuracy:.2f}' for accuracy in accuracies)} "
            f"| {statistics.mean(accuracies):.3f} | {statistics.mean(seconds) / 60:.1f} min |"
        )
    write_report("improved_variants", rows)


if __name__ == "__main__":
    main()
