import base64
import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from mnist_pipeline.client_share import cap_clients, largest_cap, max_client_share
from mnist_pipeline.datastore import DataStore, LabelError, TamperedExample, check_label, client_of, image_sha256
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.mnist import read_directory
from tests.serving.conftest import SUBSET


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return read_directory(SUBSET).test_images[:40]


@pytest.fixture(params=["local", "memory", "s3"])
def store(request, tmp_path, monkeypatch) -> DataStore:
    """The same store on a local folder, on fsspec's in-memory filesystem (no links, no fcntl) and in an S3 bucket
    (moto's server: conditional PutObject)."""
    locations = {
        "local": lambda: tmp_path / "data",
        "memory": lambda: f"memory://{tmp_path.name}",
        "s3": lambda: f"{request.getfixturevalue('s3_bucket')}/data",
    }
    if request.param == "memory":  # no atomic create-if-absent: accepted only for a single writer
        monkeypatch.setenv("MNIST_STORE_SINGLE_WRITER", "1")
    store = DataStore(locations[request.param]())
    yield store
    if request.param == "memory" and store.fs.exists(store.root):
        store.fs.rm(store.root, recursive=True)


def test_examples_are_stored_once_by_content_and_counted(store, digits):
    assert store.summary()["examples"] == 0
    assert [store.add(digits[i], 7, "feedback")["outcome"] for i in (0, 1, 0)] == ["added", "added", "duplicate"]
    assert store.add(digits[2], 3, "import:scans")["outcome"] == "added"
    summary = store.summary()
    assert (summary["examples"], summary["by_label"], summary["by_source"], summary["conflicts"]) == (
        3,
        {"3": 1, "7": 2},
        {"feedback": 2, "import:scans": 1},
        [],
    )
    images, labels = store.arrays()
    assert sorted(labels.tolist()) == [3, 7, 7]
    assert {image_sha256(image) for image in images} == {image_sha256(digits[i]) for i in range(3)}


def test_the_same_image_with_two_labels_is_a_conflict_not_two_examples(store, digits):
    store.add(digits[0], 7, "feedback")
    before = store.summary()["digest"]
    assert store.add(digits[0], 1, "feedback")["outcome"] == "conflict"
    summary = store.summary()
    assert summary["examples"] == 0 and summary["conflicts"] == [{"sha256": image_sha256(digits[0]), "labels": [1, 7]}]
    assert summary["digest"] != before and store.arrays()[0].shape == (0, 28, 28)


def test_the_digest_depends_on_what_the_examples_are_not_on_their_order_or_source(tmp_path, digits):
    first, second = DataStore(tmp_path / "a"), DataStore(tmp_path / "b")
    for index in range(5):
        first.add(digits[index], index, "feedback")
    for index in reversed(range(5)):
        second.add(digits[index], index, "import:other")
    assert first.summary()["digest"] == second.summary()["digest"]
    second.add(digits[5], 5, "feedback")
    assert first.summary()["digest"] != second.summary()["digest"]


def test_bad_labels_and_images_are_refused_and_nothing_is_written(store, digits):
    for label in ("10", "-1", "x", "", "7.0", None):
        with pytest.raises(LabelError, match="label must be one digit from 0 to 9"):
            check_label(label)
    with pytest.raises(ValueError, match="28x28 uint8"):
        store.add(digits[0].astype(np.float32), 1, "feedback")
    assert store.entries() == {}


def test_a_crash_while_writing_leaves_nothing_half_written(tmp_path, digits, monkeypatch):
    store = DataStore(tmp_path / "data")
    monkeypatch.setattr("os.link", lambda *_: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(OSError, match="No space left"):
        store.add(digits[0], 7, "feedback")
    assert [path for path in (tmp_path / "data").rglob("*") if path.is_file()] == []
    monkeypatch.undo()
    assert store.add(digits[0], 7, "feedback")["outcome"] == "added"  # and it can be written again


WRITER = """
import sys, time
from pathlib import Path
import numpy as np
from mnist_pipeline.datastore import DataStore
from mnist_pipeline.mnist import read_directory

root, subset, worker = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
digits = read_directory(subset).test_images[:40]
store = DataStore(root / "data")
while not (root / "go").exists():  # start together, to race for the same objects
    time.sleep(0.001)
outcomes = []
for index in range(40):
    label = (index + (1 if worker == 3 and index < 5 else 0)) % 10  # writer 3 mislabels five images
    outcomes.append(store.add(digits[index], label, f"writer-{worker}")["outcome"])
print(outcomes.count("added"))
"""


def test_concurrent_writers_in_several_processes_lose_nothing_and_store_each_example_once(tmp_path, digits):
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), str(SUBSET), str(worker)], stdout=subprocess.PIPE, text=True
        )
        for worker in range(4)
    ]
    (tmp_path / "go").touch()
    added = [int(writer.communicate(timeout=120)[0]) for writer in writers]
    assert all(writer.returncode == 0 for writer in writers)
    store = DataStore(tmp_path / "data")
    entries = store.entries()
    assert len(entries) == 40 and sum(len(labels) for labels in entries.values()) == 45  # 5 under two labels
    assert 35 <= sum(added) <= 40  # one writer added each image, unless two labels raced (then both conflict)
    summary = store.summary()
    assert summary["examples"] == 35 and len(summary["conflicts"]) == 5
    assert sum(summary["by_source"].values()) == 35
    assert not [path for path in (tmp_path / "data").rglob("*") if path.name.startswith(".")]
    records = [json.loads(path.read_text()) for path in (tmp_path / "data").rglob("*.json")]
    assert len(records) == 45 and all(record["sha256"] in entries for record in records)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda record: {**record, "image": base64.b64encode(bytes(784)).decode()},  # another image
        lambda record: {**record, "label": 3},
        lambda record: {**record, "image": "not base64!"},
        lambda record: ["not", "a", "record"],
    ],
    ids=["image", "label", "encoding", "shape"],
)
def test_an_object_whose_content_is_not_what_its_name_says_is_named_and_never_trained_on(store, digits, tamper):
    for index in range(3):
        store.add(digits[index], 7, "feedback")
    path = store.path(image_sha256(digits[1]), 7)
    store.fs.pipe_file(path, json.dumps(tamper(json.loads(store.fs.cat_file(path)))).encode())
    assert [record["sha256"] for record in store.records()] == sorted(image_sha256(digits[i]) for i in (0, 2))
    summary = store.summary()
    assert summary["tampered"] == [store.fs.unstrip_protocol(path)] and summary["by_source"] == {"feedback": 2}
    with pytest.raises(TamperedExample) as error:
        store.arrays()
    assert str(error.value) == (
        f"{store.fs.unstrip_protocol(path)}: the content is not the image and label its name says (changed or damaged "
        "after it was stored); remove it from the store, or restore it"
    )
    store.fs.rm(path)
    assert len(store.arrays()[1]) == 2 and store.summary()["tampered"] == []


def test_unreadable_json_is_tampered_too(tmp_path, digits):
    store = DataStore(tmp_path / "data")
    store.add(digits[0], 4, "feedback")
    path = store.path(image_sha256(digits[0]), 4)
    store.fs.pipe_file(path, b"{half a rec")
    with pytest.raises(TamperedExample, match="the content is not the image and label its name says"):
        store.arrays()


def test_each_example_records_its_client_and_a_record_without_one_reads_as_unknown(tmp_path, digits):
    store = DataStore(tmp_path / "data")
    store.add(digits[0], 7, "feedback", client="10.0.0.7")
    store.add(digits[0], 7, "feedback", client="10.0.0.8")  # a duplicate keeps the first sender
    store.add(digits[1], 3, "import:scans")
    old = {"sha256": image_sha256(digits[2]), "label": 4, "source": "feedback", "added_at": "2026-01-01T00:00:00+00:00"}
    old["image"] = base64.b64encode(digits[2].tobytes()).decode()  # stored before clients were recorded
    (tmp_path / "data" / "examples" / old["sha256"]).mkdir(parents=True)
    (tmp_path / "data" / "examples" / old["sha256"] / "4.json").write_text(json.dumps(old))
    clients = {record["sha256"]: client_of(record) for record in store.examples()}
    assert clients == {
        image_sha256(digits[0]): "10.0.0.7",
        image_sha256(digits[1]): "unknown",
        old["sha256"]: "unknown",
    }
    assert store.summary()["by_client"] == {"10.0.0.7": 1, "unknown": 2}
    assert len(store.arrays()[1]) == 3


def sent(client: str | None, count: int, source: str = "feedback", start: int = 0) -> list[dict]:
    return [
        {
            "sha256": f"{client}-{index:04d}",
            "source": source,
            "added_at": f"2026-01-01T00:{index:04d}",
            "client": client,
        }
        for index in range(start, start + count)
    ]


def test_no_client_keeps_over_its_share_of_what_is_learned_and_a_dominant_one_keeps_its_oldest():
    records = sent("flood", 80, start=0) + sent("a", 10) + sent("b", 10) + sent(None, 40, source="import:scans")
    kept, shares = cap_clients(records[::-1], 0.2)  # the store's order is by digest, not by time
    kept_by = Counter(client_of(record) for record in kept)
    assert shares.cap == 15 and kept_by == {"flood": 15, "a": 10, "b": 10, "unknown": 40}
    assert all(count <= 0.2 * len(kept) for client, count in kept_by.items() if client != "unknown")
    assert sorted(record["sha256"] for record in kept if record["client"] == "flood") == [
        f"flood-{index:04d}" for index in range(15)
    ]
    assert (shares.sent, shares.left_out, shares.imported) == ({"a": 10, "b": 10, "flood": 80}, {"flood": 65}, 40)


def test_the_cap_leaves_out_nothing_when_no_client_is_over_its_share_and_everything_of_a_lone_client():
    even = [record for client in "abcde" for record in sent(client, 4)]
    assert cap_clients(even, 0.2) == (even, cap_clients(even, 0.2)[1]) and cap_clients(even, 0.2)[1].cap is None
    assert cap_clients(sent("a", 7), 1.0)[0] == sent("a", 7)
    kept, shares = cap_clients(sent("a", 7), 0.2)  # one client cannot be 20% of what it alone sent
    assert kept == [] and shares.left_out == {"a": 7}
    assert largest_cap([], 0, 0.2) == 0


@pytest.mark.parametrize("value", ["0", "1.5", "x", "-0.2"])
def test_a_share_setting_that_is_not_a_fraction_fails_in_one_line(value, monkeypatch):
    monkeypatch.setenv("MNIST_MAX_CLIENT_SHARE", value)
    with pytest.raises(PipelineError, match="MNIST_MAX_CLIENT_SHARE=.*must be a fraction above 0 and at most 1"):
        max_client_share()
