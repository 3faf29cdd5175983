"""The figures of the reports: numbers in, matplotlib figures and PNG bytes out. Apart from the text reports, so
that commands that draw nothing (predict) do not import matplotlib."""

import io

import matplotlib

matplotlib.use("Agg")
import numpy as np
from matplotlib import pyplot
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

TRAIN_COLOR = "blue"
VALIDATION_COLOR = "orange"


def learning_curves(histories: list[dict[str, list[float]]]) -> Figure:
    """Loss and accuracy per epoch for every fold: train in blue, validation in orange."""
    figure, (loss_axes, accuracy_axes) = pyplot.subplots(2, 1, figsize=(6, 6), sharex=True)
    for axes, metric, title in (
        (loss_axes, "loss", "Cross Entropy Loss"),
        (accuracy_axes, "accuracy", "Classification Accuracy"),
    ):
        for index, history in enumerate(histories):
            epochs = np.arange(1, len(history[metric]) + 1)
            first = index == 0
            axes.plot(epochs, history[metric], ".-", color=TRAIN_COLOR, label="train" if first else None)
            if f"val_{metric}" in history:
                axes.plot(
                    epochs,
                    history[f"val_{metric}"],
                    ".-",
                    color=VALIDATION_COLOR,
                    label="validation" if first else None,
                )
        axes.set_title(title)
        axes.legend()
    accuracy_axes.set_xlabel("epoch")
    accuracy_axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.tight_layout()
    return figure


def accuracy_box_plot(accuracies: list[float]) -> Figure:
    figure = box_plots({"folds": accuracies})
    figure.axes[0].set_title("Cross-validation accuracy")
    figure.tight_layout()
    return figure


def image_grid(images: np.ndarray, titles: list[str] | None = None) -> Figure:
    """The first nine images in a 3x3 grid, grayscale, each with its title."""
    figure, axes_grid = pyplot.subplots(3, 3, figsize=(4, 4))
    for index, axes in enumerate(axes_grid.flat):
        axes.axis("off")
        if index < len(images):
            axes.imshow(np.squeeze(images[index]), cmap="gray")
            if titles is not None:
                axes.set_title(titles[index], fontsize=9)
    figure.tight_layout()
    return figure


def confusion_matrix_figure(matrix: np.ndarray) -> Figure:
    """Rows are true digits, columns predicted ones."""
    from sklearn.metrics import ConfusionMatrixDisplay

    figure, axes = pyplot.subplots(figsize=(6, 6))
    ConfusionMatrixDisplay(np.asarray(matrix), display_labels=list(range(len(matrix)))).plot(ax=axes, colorbar=False)
    axes.set_title("Confusion matrix (test set)")
    figure.tight_layout()
    return figure


def box_plots(named_accuracies: dict[str, list[float]]) -> Figure:
    """Fold accuracies of several variants side by side."""
    figure, axes = pyplot.subplots(figsize=(max(4, 1.4 * len(named_accuracies)), 4))
    axes.boxplot([100 * np.asarray(scores) for scores in named_accuracies.values()])
    axes.set_xticks(range(1, len(named_accuracies) + 1), list(named_accuracies), rotation=30, ha="right")
    axes.set_ylabel("fold accuracy (%)")
    figure.tight_layout()
    return figure


def png_bytes(figure: Figure) -> bytes:
    """`figure` as a small PNG; the figure is closed."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    pyplot.close(figure)
    return buffer.getvalue()
