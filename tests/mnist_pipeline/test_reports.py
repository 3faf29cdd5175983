import base64
import re

import numpy as np
import pytest

from mnist_pipeline.figures import image_grid, png_bytes
from mnist_pipeline.reports import markdown_image, study_lines, summarize, users_digits_lines

ACCURACIES = [0.9855, 0.98, 0.991, 0.9872, 0.9833]


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
