"""Labels joined to the answers they judge: which digit the version answered, and which was right."""

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np


class LabeledAnswers(NamedTuple):
    answered: np.ndarray  # the digit the version answered
    labels: np.ndarray  # the right one
    times: np.ndarray  # when the label was given (unix seconds)


def labeled_answers(
    version: str, answered_by_id: Mapping[str, int], records: Iterable[Mapping[str, Any]]
) -> LabeledAnswers:
    """The label records about `version`'s answers: those that name it (with the digit answered), and those that
    name no version but a prediction of it in `answered_by_id` (its logged predictions, by id)."""
    rows = []
    for record in records:
        answered = record.get("predicted") if record.get("version") == version else None
        if record.get("version") in (None, version) and answered is None:
            answered = answered_by_id.get(record["prediction_id"])
        if answered is not None:
            rows.append((answered, record["label"], record["time"]))
    if not rows:
        return LabeledAnswers(np.zeros(0, int), np.zeros(0, int), np.zeros(0, float))
    answered, labels, times = zip(*rows)
    return LabeledAnswers(np.array(answered, int), np.array(labels, int), np.array(times, float))
