"""Text reports: the study's summary of a cross-validation and the Markdown pieces of Prefect's artifacts."""

import base64

import numpy as np


def summarize(accuracies: list[float]) -> dict[str, float | int]:
    """Mean, population std (as the study's numpy `std()`) and count of fold accuracies."""
    scores = np.asarray(accuracies, dtype=np.float64)
    return {"mean": float(scores.mean()), "std": float(scores.std()), "n": int(scores.size)}


def study_lines(accuracies: list[float]) -> list[str]:
    """The study's console report: `> 98.550` per fold, then mean, std and n in percent."""
    summary = summarize(accuracies)
    lines = [f"> {100 * accuracy:.3f}" for accuracy in accuracies]
    lines.append(f"Accuracy: mean={100 * summary['mean']:.3f} std={100 * summary['std']:.3f}, n={summary['n']}")
    return lines


def markdown_image(png: bytes, alt: str) -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def percent(accuracy: float | None) -> str:
    return "-" if accuracy is None else f"{100 * accuracy:.3f}%"


def users_digits_lines(users_digits: dict | None) -> list[str]:
    """The promotion report's comparison on the held-out new examples, when there are any."""
    if not users_digits:
        return ["Users' digits: no held-out new examples yet."]
    return [
        f"Users' digits ({users_digits['examples']} held-out new examples):",
        "| model | accuracy |\n|---|---|\n"
        f"| challenger | {percent(users_digits['challenger'])} |\n| champion | {percent(users_digits['champion'])} |",
    ]
