import keras
import numpy as np
import pytest

from mnist_pipeline.config import MODEL_NAMES
from mnist_pipeline.models import (
    FACTORIES,
    STEPS_PER_EXECUTION,
    ModelFileError,
    augmentation,
    build_model,
    compile_model,
    load_checked_model,
)

STUDY_MODELS = ("baseline", "batchnorm", "deeper")

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
# improved: per block two 3x3 convolutions and a 5x5 one with stride 2 (25*c_in*f + f);
# 28 -> 26 -> 24 -> 12x12x32 -> 10 -> 8 -> 4x4x64, then a 4x4 convolution to 1x1x128 and the output layer
IMPROVED = (CONV32 + (9 * 32 * 32 + 32) + (25 * 32 * 32 + 32)) + (
    (9 * 32 * 64 + 64) + (9 * 64 * 64 + 64) + (25 * 64 * 64 + 64)
)
IMPROVED += (16 * 64 * 128 + 128) + (128 * 10 + 10)
# = (320 + 9,248 + 25,632) + (18,496 + 36,928 + 102,464) + 131,200 + 1,290 = 325,578
IMPROVED_BN = 2 * (3 * 32 + 3 * 64 + 128)  # 832 trainable, and as many moving statistics


def _count(weights) -> int:
    return sum(int(np.prod(weight.shape)) for weight in weights)


@pytest.mark.parametrize(
    "name, trainable, non_trainable",
    [
        ("baseline", BASELINE, 0),
        ("batchnorm", BASELINE + BN_TRAINABLE, BN_MOVING),
        ("deeper", DEEPER, 0),
        ("improved", IMPROVED + IMPROVED_BN, IMPROVED_BN),
    ],
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
        (
            "improved",
            ["RandomRotation", "RandomZoom", "RandomTranslation"]
            + (["Conv2D", "BatchNormalization"] * 3 + ["Dropout"]) * 2
            + ["Conv2D", "BatchNormalization", "Flatten", "Dropout", "Dense"],
        ),
    ],
)
def test_layer_structure(name, layers):
    model = build_model(name)
    assert model.name == name
    assert [type(layer).__name__ for layer in model.layers] == layers
    assert model.input_shape == (None, 28, 28, 1)
    assert model.output_shape == (None, 10)


@pytest.mark.parametrize("name", STUDY_MODELS)
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


def test_every_model_name_the_flows_accept_has_a_factory():
    assert tuple(FACTORIES) == MODEL_NAMES


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_predictions_are_probability_distributions(name):
    images = np.random.default_rng(0).random((3, 28, 28, 1), dtype=np.float32)
    probabilities = build_model(name)(images, training=False).numpy()
    assert probabilities.shape == (3, 10)
    assert np.all(probabilities >= 0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_improved_uses_the_study_s_activations_and_initializers():
    *hidden, output = [
        layer
        for layer in build_model("improved").layers
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
    ]
    assert all(layer.activation is keras.activations.relu for layer in hidden)
    assert all(isinstance(layer.kernel_initializer, keras.initializers.HeUniform) for layer in hidden)
    assert output.activation is keras.activations.softmax


def test_augmentation_moves_digits_in_training_only():
    images = np.zeros((8, 28, 28, 1), dtype=np.float32)
    images[:, 10:18, 12:16] = 1.0  # a bar in the middle, on background
    augment = keras.Sequential([keras.Input((28, 28, 1)), *augmentation()])
    np.testing.assert_array_equal(augment(images, training=False).numpy(), images)
    moved = augment(images, training=True).numpy()
    assert moved.shape == images.shape
    assert not np.allclose(moved, images)
    assert len({moved[i].tobytes() for i in range(len(moved))}) == len(moved)  # each image its own transform
    corners = moved[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    np.testing.assert_array_equal(corners, 0.0)  # the border is filled with background, not the digit


def test_improved_predicts_deterministically_at_inference():
    images = np.random.default_rng(1).random((4, 28, 28, 1), dtype=np.float32)
    model = build_model("improved")
    np.testing.assert_array_equal(model(images, training=False).numpy(), model(images, training=False).numpy())


def test_num_classes_sets_the_output_width():
    assert build_model("deeper", num_classes=4).output_shape == (None, 4)


def test_compile_model_uses_sgd_with_momentum_and_cross_entropy():
    model = build_model("baseline")
    assert compile_model(model, learning_rate=0.05) is model
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.05)
    assert model.optimizer.momentum == pytest.approx(0.9)
    assert model.loss == "categorical_crossentropy"


def test_compile_model_with_decay_steps_decays_the_rate_to_zero_along_a_cosine():
    optimizer = compile_model(build_model("baseline"), learning_rate=0.02, decay_steps=100).optimizer
    rates = []
    for step in (0, 50, 100, 150):
        optimizer.iterations.assign(step)
        rates.append(float(optimizer.learning_rate))
    assert rates == pytest.approx([0.02, 0.01, 0.0, 0.0], abs=1e-7)


@pytest.mark.parametrize("name", ["baseline", "improved"])
def test_batches_run_several_per_execution_make_the_same_updates_as_one_at_a_time(name):
    """`compile_model` runs STEPS_PER_EXECUTION batches per call into TensorFlow, for speed only: the weights and
    metrics after an epoch (with a partial last run of batches) are those of one batch per call, to the bit."""
    images = np.random.default_rng(0).random((32 * (STEPS_PER_EXECUTION + 3), 28, 28, 1), dtype=np.float32)
    labels = keras.utils.to_categorical(np.arange(len(images)) % 10, 10)
    trained = []
    for steps_per_execution in (STEPS_PER_EXECUTION, 1):
        keras.utils.set_random_seed(5)
        model = compile_model(build_model(name), learning_rate=0.05, decay_steps=200)
        model.compile(
            optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"], steps_per_execution=steps_per_execution
        )
        history = model.fit(images, labels, epochs=1, batch_size=32, verbose=0).history
        trained.append((model.get_weights(), history))
    (weights, history), (reference_weights, reference_history) = trained
    assert compile_model(build_model(name)).steps_per_execution == STEPS_PER_EXECUTION > 1
    assert history == reference_history
    assert all(np.array_equal(a, b) for a, b in zip(weights, reference_weights, strict=True))


def test_compile_model_defaults_to_the_study_s_learning_rate():
    model = compile_model(build_model("baseline"))
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)


@pytest.mark.parametrize("name", ["nope", "Baseline", ""])
def test_unknown_model_raises_naming_it(name):
    with pytest.raises(ValueError, match="model must be one of baseline, batchnorm, deeper, improved") as error:
        build_model(name)
    assert f"model={name!r}" in str(error.value)


@pytest.fixture(scope="module")
def saved_baseline(tmp_path_factory):
    model = build_model("baseline")
    path = tmp_path_factory.mktemp("models") / "m.keras"
    model.save(path)
    return model, path


def test_load_checked_model_loads_a_saved_mnist_model(saved_baseline):
    model, path = saved_baseline
    loaded = load_checked_model(path)
    assert loaded.input_shape == (None, 28, 28, 1) and loaded.output_shape == (None, 10)
    images = np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-5)


def _save(model: keras.Model, path):
    model.save(path)
    return path


def missing_file(tmp_path, saved_baseline):
    return tmp_path / "nope.keras"


def text_file(tmp_path, saved_baseline):
    path = tmp_path / "notes.keras"
    path.write_text("not a model")
    return path


def truncated_file(tmp_path, saved_baseline):
    whole = saved_baseline[1].read_bytes()
    path = tmp_path / "truncated.keras"
    path.write_bytes(whole[: len(whole) // 2])
    return path


def color_input(tmp_path, saved_baseline):
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
    return _save(model, tmp_path / "cifar.keras")


def five_outputs(tmp_path, saved_baseline):
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(5)])
    return _save(model, tmp_path / "five.keras")


def unsafe_lambda(tmp_path, saved_baseline):
    """A Lambda layer's Python bytecode would run on loading; safe mode refuses it."""
    model = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Lambda(lambda x: x[:, :10])]
    )
    return _save(model, tmp_path / "lambda.keras")


MNIST_SHAPES = "an MNIST model maps (None, 28, 28, 1) to (None, 10)"


NOT_MNIST_MODELS = [
    (missing_file, "model file {path} does not exist"),
    (text_file, "{path} is damaged or not a Keras model (a .keras file is a zip archive"),
    (truncated_file, "{path} is damaged or not a Keras model (a .keras file is a zip archive"),
    (color_input, "{path} maps (None, 32, 32, 3) to (None, 10); " + MNIST_SHAPES),
    (five_outputs, "{path} maps (None, 28, 28, 1) to (None, 5); " + MNIST_SHAPES),
    (unsafe_lambda, "{path} is not a loadable Keras model ("),
]


@pytest.mark.parametrize("make, message", NOT_MNIST_MODELS, ids=[make.__name__ for make, _ in NOT_MNIST_MODELS])
def test_load_checked_model_rejects_what_is_not_an_mnist_model(make, message, tmp_path, saved_baseline):
    path = make(tmp_path, saved_baseline)
    with pytest.raises(ModelFileError) as error:
        load_checked_model(path)
    assert str(error.value).startswith(message.format(path=path))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("make", [text_file, truncated_file], ids=lambda make: make.__name__)
def test_a_damaged_model_file_is_not_reported_as_missing(make, tmp_path, saved_baseline):
    path = make(tmp_path, saved_baseline)
    with pytest.raises(ModelFileError) as error:
        load_checked_model(path)
    assert "not found" not in str(error.value).lower(), str(error.value)


def test_a_model_carrying_code_is_refused_by_safe_mode(tmp_path):
    import keras

    tampered = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Lambda(lambda x: x * 2), keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    path = tmp_path / "tampered.keras"
    tampered.save(path)
    with pytest.raises(ModelFileError, match=rf"{path} is not a loadable Keras model \(.*(lambda|safe_mode)"):
        load_checked_model(path)
