"""The monitor's figures: the window over time, the digit mix and the mean image, reference against window."""

import numpy as np
from matplotlib import pyplot
from matplotlib.figure import Figure

from mnist_pipeline import figures  # noqa: F401  (selects matplotlib's Agg backend before pyplot draws)

TIME_BINS = 12


def over_time(times: np.ndarray, top_probabilities: np.ndarray, label_times: np.ndarray, correct: np.ndarray) -> Figure:
    """Requests, mean confidence and live accuracy per twelfth of the window."""
    start = min([*times, *label_times], default=0.0)
    end = max([*times, *label_times], default=1.0)
    edges = np.linspace(start, end + 1e-6, TIME_BINS + 1)
    minutes = (edges[:-1] - start) / 60
    requests = np.histogram(times, edges)[0]
    confidence = np.histogram(times, edges, weights=top_probabilities)[0] / np.maximum(requests, 1)
    labeled = np.histogram(label_times, edges)[0]
    accuracy = np.histogram(label_times, edges, weights=correct.astype(float))[0] / np.maximum(labeled, 1)
    figure, axes = pyplot.subplots(3, 1, figsize=(6, 6), sharex=True)
    width = (minutes[1] - minutes[0]) if len(minutes) > 1 else 1
    axes[0].bar(minutes, requests, width=width, align="edge")
    axes[0].set_ylabel("requests")
    axes[1].plot(minutes[requests > 0], confidence[requests > 0], marker="o")
    axes[1].set_ylabel("mean top prob.")
    axes[2].plot(minutes[labeled > 0], accuracy[labeled > 0], marker="o", color="green")
    axes[2].set_ylabel("live accuracy")
    axes[2].set_xlabel("minutes into the window")
    figure.tight_layout()
    return figure


def digit_mix(window_digits: np.ndarray, reference_digits: np.ndarray) -> Figure:
    figure, axes = pyplot.subplots(figsize=(6, 3))
    digits = np.arange(10)
    for offset, (name, answered) in zip((-0.2, 0.2), (("reference", reference_digits), ("window", window_digits))):
        share = np.bincount(answered, minlength=10) / max(len(answered), 1)
        axes.bar(digits + offset, share, width=0.4, label=name)
    axes.set_xticks(digits)
    axes.set_xlabel("predicted digit")
    axes.set_ylabel("share")
    axes.legend()
    figure.tight_layout()
    return figure


def mean_images(reference_mean: np.ndarray, window_mean: np.ndarray) -> Figure:
    figure, axes = pyplot.subplots(1, 3, figsize=(7, 2.6))
    panels = (("reference", reference_mean, "gray"), ("window", window_mean, "gray"))
    for ax, (title, image, colors) in zip(axes, panels):
        ax.imshow(image, cmap=colors, vmin=0, vmax=1)
        ax.set_title(title)
    difference = window_mean - reference_mean
    limit = max(float(np.abs(difference).max()), 1e-6)
    axes[2].imshow(difference, cmap="coolwarm", vmin=-limit, vmax=limit)
    axes[2].set_title("window - reference")
    for ax in axes:
        ax.axis("off")
    figure.tight_layout()
    return figure
