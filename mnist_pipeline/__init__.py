"""The MNIST CNN study as pure functions: data, preprocessing, folds, models, training, reports."""

__version__ = "0.1.0"
