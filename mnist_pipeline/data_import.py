"""Importing a folder of labeled digit images (`labels.csv`: `file,label`) into the labeled-data store."""

import csv
from pathlib import Path
from typing import Any

from mnist_pipeline.datastore import DataStore, check_label
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.images import load_digit

LABELS_FILE = "labels.csv"


class LabelsFileError(PipelineError):
    """A folder that cannot be imported at all (no labels.csv, or not the expected columns)."""


def labeled_rows(folder: Path) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of the folder's labels.csv, or LabelsFileError naming what is missing."""
    labels = folder / LABELS_FILE
    if not labels.is_file():
        raise LabelsFileError(f"{folder} has no {LABELS_FILE}; add one with the columns file,label")
    with open(labels, newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        if not {"file", "label"} <= set(reader.fieldnames or []):
            raise LabelsFileError(f"{labels} must start with the header file,label, got {reader.fieldnames}")
        return [(reader.line_num, row) for row in reader]


def inside(folder: Path, name: str) -> Path:
    """The row's file, which must lie in the folder: a name with `..`, an absolute one or a link out is refused."""
    if Path(name).is_absolute() or ".." in Path(name).parts:
        raise PipelineError(f"not a file in {folder}: name it by its path inside the folder, without '..'")
    path = folder / name
    if not path.resolve().is_relative_to(folder.resolve()):
        raise PipelineError(
            f"a link to {path.resolve()}, outside {folder}: copy the image into the folder instead of linking it"
        )
    return path


def import_folder(store: DataStore, folder: Path) -> dict[str, Any]:
    """Each row's image prepared like `predict` prepares it and stored with its label; a bad row gets
    its own error and the others are still imported. `{"outcomes": {added, duplicate, conflict: counts}, "errors": [one line per bad row]}`."""
    folder = Path(folder)
    source = f"import:{folder.resolve().name}"
    outcomes = {"added": 0, "duplicate": 0, "conflict": 0}
    errors = []
    for line, row in labeled_rows(folder):
        name = (row.get("file") or "").strip()
        try:
            if not name:
                raise PipelineError("no file named")
            label = check_label(row.get("label") or "")
            outcome = store.add(load_digit(inside(folder, name)), label, source)["outcome"]
            outcomes[outcome] += 1
        except PipelineError as error:  # ImageError and LabelError included
            errors.append(f"{LABELS_FILE} line {line} ({name or 'no file'}): {error}")
    return {"outcomes": outcomes, "errors": errors}
