"""An ensemble as one Keras model: the members' softmax outputs averaged by a layer that safe mode loads."""

import keras
import numpy as np
from keras import layers

from mnist_pipeline.models import INPUT_SHAPE


def average_models(members: list[keras.Model]) -> keras.Model:
    """A functional model whose output is the mean of the members' outputs; the members become its layers
    `member_1`, `member_2`, ..."""
    images = keras.Input(shape=INPUT_SHAPE)
    for number, member in enumerate(members, start=1):
        member.name = f"member_{number}"  # layer names must be unique within a model
    return keras.Model(images, layers.Average()([member(images) for member in members]), name="ensemble")


def members_of(ensemble: keras.Model) -> list[keras.Model]:
    """The member models of an ensemble made by `average_models`, in order."""
    return [layer for layer in ensemble.layers if layer.name.startswith("member_")]


def mean_history(histories: list[dict[str, list[float]]]) -> dict[str, list[float]]:
    """The members' per-epoch metrics averaged, for the learning curves of the ensemble as a whole."""
    return {name: np.mean([history[name] for history in histories], axis=0).tolist() for name in histories[0]}
