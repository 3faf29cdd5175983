"""The study's three CNNs and an improved one. Factories return uncompiled models; `compile_model` adds SGD."""

import zipfile
from pathlib import Path

import keras
from keras import layers

from mnist_pipeline.errors import PipelineError

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10


def conv(filters: int) -> layers.Conv2D:
    return layers.Conv2D(filters, (3, 3), activation="relu", kernel_initializer="he_uniform")


def dense(units: int) -> layers.Dense:
    return layers.Dense(units, activation="relu", kernel_initializer="he_uniform")


def baseline(num_classes: int = NUM_CLASSES) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            conv(32),
            layers.MaxPooling2D((2, 2)),
            layers.Flatten(),
            dense(100),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="baseline",
    )


def batchnorm(num_classes: int = NUM_CLASSES) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            conv(32),
            layers.BatchNormalization(),
            layers.MaxPooling2D((2, 2)),
            layers.Flatten(),
            dense(100),
            layers.BatchNormalization(),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="batchnorm",
    )


def deeper(num_classes: int = NUM_CLASSES) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            conv(32),
            layers.MaxPooling2D((2, 2)),
            conv(64),
            conv(64),
            layers.MaxPooling2D((2, 2)),
            layers.Flatten(),
            dense(100),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="deeper",
    )


def augmentation() -> list[layers.Layer]:
    """Small random rotations (up to ~11 degrees), zooms and shifts (10%), applied in training only.

    The border is filled with its nearest pixel, which is background under every scaling.
    """
    return [
        layers.RandomRotation(0.03, fill_mode="nearest"),
        layers.RandomZoom(0.1, fill_mode="nearest"),
        layers.RandomTranslation(0.1, 0.1, fill_mode="nearest"),
    ]


def downsampling_block(filters: int) -> list[layers.Layer]:
    """Two 3x3 convolutions, then a strided 5x5 one that halves the size (a learned pooling); each normalized."""
    return [
        conv(filters),
        layers.BatchNormalization(),
        conv(filters),
        layers.BatchNormalization(),
        layers.Conv2D(filters, (5, 5), strides=2, padding="same", activation="relu", kernel_initializer="he_uniform"),
        layers.BatchNormalization(),
        layers.Dropout(0.4),
    ]


def improved(num_classes: int = NUM_CLASSES) -> keras.Model:
    """Beyond the study, after Chris Deotte's Kaggle comparison of MNIST CNNs: augmentation, batch
    normalization, strided convolutions instead of max pooling, and dropout."""
    return keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            *augmentation(),
            *downsampling_block(32),  # 28x28 -> 26 -> 24 -> 12x12x32
            *downsampling_block(64),  # -> 10 -> 8 -> 4x4x64
            layers.Conv2D(128, (4, 4), activation="relu", kernel_initializer="he_uniform"),  # -> 1x1x128
            layers.BatchNormalization(),
            layers.Flatten(),
            layers.Dropout(0.4),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="improved",
    )


FACTORIES = {"baseline": baseline, "batchnorm": batchnorm, "deeper": deeper, "improved": improved}


def build_model(name: str, num_classes: int = NUM_CLASSES) -> keras.Model:
    if name not in FACTORIES:
        raise ValueError(f"model must be one of {', '.join(FACTORIES)}, got model={name!r}")
    return FACTORIES[name](num_classes)


# Batches run per call from Keras into TensorFlow: the same updates in the same order (the same weights and
# metrics to the last bit), without Python's per-batch overhead. A single-thread baseline fold-epoch: 8.2-8.8 s
# at 1, 5.7-6.0 at 32, 5.2 at 128; compute-bound models (deeper, improved) gain nothing and lose nothing.
STEPS_PER_EXECUTION = 128


def compile_model(
    model: keras.Model, learning_rate: float = 0.01, momentum: float = 0.9, decay_steps: int | None = None
) -> keras.Model:
    """SGD with momentum and cross-entropy; with `decay_steps`, the rate decays to 0 over that many steps."""
    if decay_steps:
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    return model


class ModelFileError(PipelineError):
    """A file that is not a Keras model for MNIST."""


def load_checked_model(path: Path) -> keras.Model:
    """A saved model, loaded in Keras's safe mode, that maps (28, 28, 1) images to 10 classes."""
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"{path} is damaged or not a Keras model (a .keras file is a zip archive; this is not one)"
        )
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # Keras reports damaged archives and unsafe content in many ways
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelFileError(f"{path} is not a loadable Keras model ({reason})") from None
    if tuple(model.input_shape[1:]) != INPUT_SHAPE or model.output_shape[1:] != (NUM_CLASSES,):
        raise ModelFileError(
            f"{path} maps {model.input_shape} to {model.output_shape}; an MNIST model maps (None, 28, 28, 1) to (None, 10)"
        )
    return model
