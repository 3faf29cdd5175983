import base64
import re

import numpy as np
import pytest
from matplotlib import pyplot
from matplotlib.colors import same_color

from mnist_pipeline.reports import (
    accuracy_box_plot,
    image_grid,
    learning_curves,
    markdown_image,
    png_bytes,
    study_lines,
    summarize,
    users_digits_lines,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ACCURACIES = [0.9855, 0.98, 0.991, 0.9872, 0.9833]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    pyplot.close("all")


def test_summarize_is_mean_population_std_and_count():
    summary = summarize(ACCURACIES)
    mean = sum(ACCURACIES) / 5
    population_std = (sum((a - mean) ** 2 for a in ACCURACIES) / 5) ** 0.5  # divides by n, not n - 1
    assert summary["mean"] == pytest.approx(mean, rel=1e-12)
    assert summary["std"] == pytest.approx(population_std, rel=1e-12)
    assert summary["std"] != pytest.approx(np.std(ACCURACIES, ddof=1))
    assert summary["n"] == 5


def test_summarize_of_one_fold_has_zero_std():
    assert summarize([0.97]) == {"mean": 0.97, "std": 0.0, "n": 1}


def test_study_lines_formats_folds_and_summary_in_percent():
    lines = study_lines([0.9855, 0.98])
    # mean 98.275, population std 0.275
    assert lines == ["> 98.550", "> 98.000", "Accuracy: mean=98.275 std=0.275, n=2"]


def test_study_lines_has_one_line_per_fold_plus_a_summary():
    lines = study_lines(ACCURACIES)
    assert len(lines) == 6
    assert all(re.fullmatch(r"> \d+\.\d{3}", line) for line in lines[:5])
    assert re.fullmatch(r"Accuracy: mean=\d+\.\d{3} std=\d+\.\d{3}, n=5", lines[5])


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


def test_markdown_image_is_a_data_uri_of_the_png():
    png = png_bytes(image_grid(np.zeros((1, 28, 28), np.uint8)))
    text = markdown_image(png, "Sample digits")
    match = re.fullmatch(r"!\[Sample digits\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", text)
    assert match
    assert base64.b64decode(match.group(1)) == png


def test_the_users_digits_table_compares_both_models_and_says_when_there_are_none():
    lines = users_digits_lines({"examples": 9, "challenger": 0.8888888, "champion": None})
    assert lines[0] == "Users' digits (9 held-out new examples):"
    assert "| challenger | 88.889% |" in lines[1] and "| champion | - |" in lines[1]
    assert users_digits_lines(None) == ["Users' digits: no held-out new examples yet."]
