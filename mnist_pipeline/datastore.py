"""The labeled-data store: new training examples (corrections from the service, imported folders).

    <store>/examples/<sha256>/<label>.json   {"sha256", "label", "source", "added_at", "image", "client"}

One object per (image, label), named by the SHA-256 of the prepared 28x28 uint8 image (its 784 bytes,
row by row) and created exclusively: a concurrent writer of the same example finds it there, so the
same image with the same label is stored once, and nothing is ever appended to or rewritten. The same
image under two labels is two objects in one folder: a conflict, left out of the examples until a
person removes the wrong one. Built on fsspec's create-if-absent (`pipe_file(mode="create")`, atomic
on object stores), so the store can move to a bucket; on a local disk the object is written under a
temporary name and hard-linked into place, which is atomic and fails if the name exists. `client` is who sent
a correction to the service (its address); imports and records older than the field have none ("unknown").
"""

import base64
import hashlib
import json
import os
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from mnist_pipeline.data_checks import NO_TEST_IMAGES, LeakageGuard, refuse_test_copy
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.images import SIDE
from mnist_pipeline.shared_store import create_exclusive, open_store

EXAMPLE_NAME = re.compile(r"(?:.*/)?examples/([0-9a-f]{64})/([0-9])\.json")
Outcome = Literal["added", "duplicate", "conflict"]
UNKNOWN_CLIENT = "unknown"


class LabelError(PipelineError):
    """A label that is not a digit from 0 to 9."""


class TamperedExample(PipelineError):
    """A stored object whose content does not match its name."""


def check_label(value: object) -> int:
    """`value` as a digit 0-9, or LabelError naming it."""
    text = str(value).strip()
    if not re.fullmatch(r"[0-9]", text):
        raise LabelError(f"label must be one digit from 0 to 9, got {str(value)[:20]!r}")
    return int(text)


def image_sha256(image: np.ndarray) -> str:
    if image.shape != (SIDE, SIDE) or image.dtype != np.uint8:
        raise ValueError(f"a stored example is a {SIDE}x{SIDE} uint8 image, got {image.shape} {image.dtype}")
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()


class DataStore:
    """`forbidden`: the test images whose copies and near-copies are refused (ExampleRefused), e.g.
    `data_checks.mnist_test_digests()`."""

    def __init__(self, location: str | os.PathLike, forbidden: LeakageGuard = NO_TEST_IMAGES):
        self.fs, self.root = open_store(location)
        self.forbidden = forbidden

    def path(self, sha256: str, label: int) -> str:
        return f"{self.root}/examples/{sha256}/{label}.json"

    def add(self, image: np.ndarray, label: int, source: str, client: str | None = None) -> dict[str, Any]:
        """Store one example (sent by `client`, if known): `{"sha256", "outcome"}`, outcome added, duplicate or
        conflict."""
        label = check_label(label)
        sha256 = image_sha256(image)
        refuse_test_copy(image, sha256, self.forbidden)
        record = {
            "sha256": sha256,
            "label": label,
            "source": source,
            "added_at": datetime.now(UTC).isoformat(),
            "image": base64.b64encode(np.ascontiguousarray(image).tobytes()).decode(),
            **({"client": client} if client else {}),
        }
        created = create_exclusive(self.fs, self.path(sha256, label), json.dumps(record).encode())
        labels = self.labels_of(sha256)
        outcome: Outcome = "conflict" if len(labels) > 1 else "added" if created else "duplicate"
        return {"sha256": sha256, "outcome": outcome}

    def labels_of(self, sha256: str) -> list[int]:
        folder = f"{self.root}/examples/{sha256}"
        names = self.fs.ls(folder, detail=False) if self.fs.exists(folder) else []
        return sorted(int(match[2]) for name in names if (match := EXAMPLE_NAME.fullmatch(name)))

    def entries(self) -> dict[str, list[int]]:
        """{image sha256: its labels} from the object names alone."""
        found: dict[str, list[int]] = {}
        for name in self.fs.find(f"{self.root}/examples"):
            if match := EXAMPLE_NAME.fullmatch(name):
                found.setdefault(match[1], []).append(int(match[2]))
        return {sha256: sorted(labels) for sha256, labels in sorted(found.items())}

    def count(self) -> int:
        """The examples retraining would use: images with one label."""
        return sum(len(labels) == 1 for labels in self.entries().values())

    def records(self) -> list[dict[str, Any]]:
        """Every stored object whose content is what its name says, conflicting ones included, in name order."""
        return self._read()[0]

    def tampered(self) -> list[str]:
        """The stored objects whose content is not what their names say: changed or damaged after they were stored."""
        return self._read()[1]

    def _read(self) -> tuple[list[dict[str, Any]], list[str]]:
        named = [(sha256, label) for sha256, labels in self.entries().items() for label in labels]
        contents = self.fs.cat([self.path(*name) for name in named]) if named else {}
        records, tampered = [], []
        for sha256, label in named:
            path = self.path(sha256, label)
            record = record_named(contents[path], sha256, label)
            if record is None:
                tampered.append(path)
            else:
                records.append(record)
        return records, tampered

    def summary(self) -> dict[str, Any]:
        """Counts by label and source of the examples, the conflicts, the tampered objects, and the digest of
        the examples."""
        entries = self.entries()
        examples = [(sha256, labels[0]) for sha256, labels in entries.items() if len(labels) == 1]
        records, tampered = self._read()
        accepted = [record for record in records if len(entries[record["sha256"]]) == 1]
        sources = Counter(record["source"] for record in accepted)
        return {
            "store": self.fs.unstrip_protocol(self.root),
            "examples": len(examples),
            "by_label": {str(label): count for label, count in sorted(Counter(label for _, label in examples).items())},
            "by_source": dict(sorted(sources.items())),
            "by_client": dict(sorted(Counter(map(client_of, accepted)).items())),
            "conflicts": [
                {"sha256": sha256, "labels": labels} for sha256, labels in entries.items() if len(labels) > 1
            ],
            "tampered": [self.fs.unstrip_protocol(path) for path in tampered],
            "digest": digest(examples),
        }

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The examples (conflicts left out) as uint8 images (N, 28, 28) and labels (N,), by image digest;
        TamperedExample if an object does not hold what its name says (nothing is trained on a changed store)."""
        return images_and_labels(self.examples())

    def examples(self) -> list[dict[str, Any]]:
        """The records of the examples (conflicts left out), by image digest; TamperedExample as `arrays`."""
        entries = self.entries()
        records, tampered = self._read()
        if tampered:
            more = f" and {len(tampered) - 1} more" if len(tampered) > 1 else ""
            raise TamperedExample(
                f"{self.fs.unstrip_protocol(tampered[0])}{more}: the content is not the image and label its name "
                "says (changed or damaged after it was stored); remove it from the store, or restore it"
            )
        return [record for record in records if len(entries[record["sha256"]]) == 1]


def images_and_labels(records: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Records as uint8 images (N, 28, 28) and labels (N,), in their order."""
    images = [np.frombuffer(base64.b64decode(record["image"]), np.uint8).reshape(SIDE, SIDE) for record in records]
    return (
        np.stack(images) if images else np.zeros((0, SIDE, SIDE), np.uint8),
        np.array([record["label"] for record in records], np.uint8),
    )


def client_of(record: dict[str, Any]) -> str:
    """Who sent the example; UNKNOWN_CLIENT for imports and records stored before clients were recorded."""
    return record.get("client") or UNKNOWN_CLIENT


def record_named(content: bytes, sha256: str, label: int) -> dict[str, Any] | None:
    """The object's record if it holds the image whose SHA-256 and the label its name gives, else None."""
    try:
        record = json.loads(content)
        image = base64.b64decode(record["image"], validate=True)
        matches = record["sha256"] == sha256 and record["label"] == label and len(image) == SIDE * SIDE
    except (ValueError, KeyError, TypeError):  # not JSON, not base64, not a record
        return None
    return record if matches and hashlib.sha256(image).hexdigest() == sha256 else None


def digest(examples: list[tuple[str, int]]) -> str:
    """SHA-256 of the sorted `sha256 label` lines: what the examples are, not where or when they came from."""
    return hashlib.sha256("".join(f"{sha256} {label}\n" for sha256, label in sorted(examples)).encode()).hexdigest()
