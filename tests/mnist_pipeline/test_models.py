import keras
import numpy as np
import pytest

from mnist_pipeline.models import MODEL_NAMES, build_model, compile_model

# Parameter counts, by hand. A 3x3 convolution with c_in inputs and f filters has 9*c_in*f + f
# parameters; a dense layer with i inputs and u units has i*u + u; BatchNormalization has 4 per
# channel (gamma and beta trainable, moving mean and variance not).
CONV32 = 9 * 1 * 32 + 32  # 320; 28x28 -> 26x26x32, pooled to 13x13x32
DENSE_BASELINE = 13 * 13 * 32 * 100 + 100  # 5,408 inputs -> 540,900
OUTPUT = 100 * 10 + 10  # 1,010
BASELINE = CONV32 + DENSE_BASELINE + OUTPUT  # 542,230
BN_TRAINABLE = 2 * 32 + 2 * 100  # 264 (gamma, beta after the conv and after the dense layer)
BN_MOVING = 2 * 32 + 2 * 100  # 264 (moving mean and variance)
# deeper: 13x13x32 -conv64-> 11x11x64 -conv64-> 9x9x64, pooled (floor) to 4x4x64 = 1,024
DEEPER = CONV32 + (9 * 32 * 64 + 64) + (9 * 64 * 64 + 64) + (4 * 4 * 64 * 100 + 100) + OUTPUT
# = 320 + 18,496 + 36,928 + 102,500 + 1,010 = 159,254


def _count(weights) -> int:
    return sum(int(np.prod(weight.shape)) for weight in weights)


@pytest.mark.parametrize(
    "name, trainable, non_trainable",
    [("baseline", BASELINE, 0), ("batchnorm", BASELINE + BN_TRAINABLE, BN_MOVING), ("deeper", DEEPER, 0)],
)
def test_parameter_counts(name, trainable, non_trainable):
    model = build_model(name)
    assert _count(model.trainable_weights) == trainable
    assert _count(model.non_trainable_weights) == non_trainable
    assert model.count_params() == trainable + non_trainable


def test_hand_counts_match_the_study():
    assert (BASELINE, BASELINE + BN_TRAINABLE + BN_MOVING, DEEPER) == (542_230, 542_758, 159_254)


@pytest.mark.parametrize(
    "name, layers",
    [
        ("baseline", ["Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"]),
        (
            "batchnorm",
            ["Conv2D", "BatchNormalization", "MaxPooling2D", "Flatten", "Dense", "BatchNormalization", "Dense"],
        ),
        ("deeper", ["Conv2D", "MaxPooling2D", "Conv2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"]),
    ],
)
def test_layer_structure(name, layers):
    model = build_model(name)
    assert model.name == name
    assert [type(layer).__name__ for layer in model.layers] == layers
    assert model.input_shape == (None, 28, 28, 1)
    assert model.output_shape == (None, 10)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_activations_and_initializers(name):
    model = build_model(name)
    *hidden, output = [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    for layer in hidden:
        assert layer.activation is keras.activations.relu, layer.name
        assert isinstance(layer.kernel_initializer, keras.initializers.HeUniform), layer.name
        if isinstance(layer, keras.layers.Conv2D):
            assert layer.kernel_size == (3, 3)
        else:
            assert layer.units == 100
    for layer in model.layers:
        if isinstance(layer, keras.layers.MaxPooling2D):
            assert layer.pool_size == (2, 2)
    assert isinstance(output, keras.layers.Dense) and output.units == 10
    assert output.activation is keras.activations.softmax


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_predictions_are_probability_distributions(name):
    images = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    probabilities = build_model(name)(images, training=False).numpy()
    assert probabilities.shape == (3, 10)
    assert np.all(probabilities >= 0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_num_classes_sets_the_output_width():
    assert build_model("deeper", num_classes=4).output_shape == (None, 4)


def test_compile_model_uses_sgd_with_momentum_and_cross_entropy():
    model = build_model("baseline")
    assert compile_model(model, learning_rate=0.05) is model
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.05)
    assert model.optimizer.momentum == pytest.approx(0.9)
    assert model.loss == "categorical_crossentropy"


def test_compile_model_defaults_to_the_study_s_learning_rate():
    model = compile_model(build_model("baseline"))
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)


@pytest.mark.parametrize("name", ["nope", "Baseline", ""])
def test_unknown_model_raises_naming_it(name):
    with pytest.raises(ValueError, match="model must be one of baseline, batchnorm, deeper") as error:
        build_model(name)
    assert f"model={name!r}" in str(error.value)
