import numpy as np
import pytest
from matplotlib import pyplot
from matplotlib.colors import same_color

from mnist_pipeline.figures import accuracy_box_plot, image_grid, learning_curves, png_bytes

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ACCURACIES = [0.9855, 0.98, 0.991, 0.9872, 0.9833]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    pyplot.close("all")


def _histories(folds=3, epochs=4):
    rng = np.random.default_rng(0)
    metrics = ("loss", "val_loss", "accuracy", "val_accuracy")
    return [{metric: rng.random(epochs).tolist() for metric in metrics} for _ in range(folds)]


def test_learning_curves_draw_train_in_blue_and_validation_in_orange():
    histories = _histories()
    figure = learning_curves(histories)
    assert len(figure.axes) == 2
    for axes, metric in zip(figure.axes, ("loss", "accuracy")):
        lines = axes.get_lines()
        assert len(lines) == 2 * len(histories)
        for history in histories:
            for key, color in ((metric, "blue"), (f"val_{metric}", "orange")):
                [line] = [line for line in lines if list(line.get_ydata()) == history[key]]
                assert same_color(line.get_color(), color), (metric, key)
                assert list(line.get_xdata()) == [1, 2, 3, 4]
        assert [text.get_text() for text in axes.get_legend().get_texts()] == ["train", "validation"]


def test_accuracy_box_plot_shows_the_folds_in_percent():
    figure = accuracy_box_plot(ACCURACIES)
    [axes] = figure.axes
    drawn = np.concatenate([line.get_ydata() for line in axes.get_lines()])
    percent = 100 * np.asarray(ACCURACIES)
    for value in (percent.min(), np.median(percent), percent.max()):
        assert np.isclose(drawn, value).any(), value
    assert "%" in axes.get_ylabel()


def test_image_grid_shows_the_first_nine_images_with_labels():
    images = np.random.default_rng(1).integers(0, 256, size=(12, 28, 28, 1), dtype=np.uint8)
    labels = np.arange(12) % 10
    figure = image_grid(images, [str(label) for label in labels])
    assert len(figure.axes) == 9
    for index, axes in enumerate(figure.axes):
        [shown] = axes.get_images()
        np.testing.assert_array_equal(shown.get_array(), images[index, :, :, 0])
        assert axes.get_title() == str(labels[index])


def test_image_grid_with_fewer_images_leaves_the_rest_empty():
    figure = image_grid(np.zeros((4, 28, 28), np.uint8))
    assert [len(axes.get_images()) for axes in figure.axes] == [1] * 4 + [0] * 5
    assert all(axes.get_title() == "" for axes in figure.axes)


def test_png_bytes_is_a_png_and_closes_the_figure():
    figure = accuracy_box_plot(ACCURACIES)
    png = png_bytes(figure)
    assert png.startswith(PNG_SIGNATURE) and len(png) > 1000
    assert not pyplot.fignum_exists(figure.number)
