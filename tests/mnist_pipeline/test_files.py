import hashlib
import os
import stat
from pathlib import Path

import pytest

from mnist_pipeline.files import ChangedFileError, create_new, replacing, store_by_digest, write_bytes


def test_replacing_replaces_the_file_when_the_block_succeeds(tmp_path):
    target = tmp_path / "result.txt"
    target.write_text("old")
    with replacing(target) as temporary:
        assert temporary.parent == tmp_path and temporary != target
        temporary.write_text("new")
        assert target.read_text() == "old"  # readers still see the old file mid-write
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.txt"]


def test_replacing_keeps_the_old_file_and_leaves_no_temporary_when_the_block_raises(tmp_path):
    target = tmp_path / "result.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with replacing(target) as temporary:
            temporary.write_text("half written")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.txt"]


def test_replacing_creates_missing_parent_directories(tmp_path):
    target = tmp_path / "a" / "b" / "result.bin"
    with replacing(target) as temporary:
        temporary.write_bytes(b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"


def test_write_bytes_writes_and_overwrites(tmp_path):
    target = tmp_path / "data.bin"
    assert write_bytes(target, b"first") == target
    write_bytes(target, b"second, longer")
    assert target.read_bytes() == b"second, longer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.bin"]


def test_a_file_stored_by_digest_is_named_by_its_content_and_verified(tmp_path):
    stored = store_by_digest(tmp_path / "members", ".keras", lambda path: path.write_bytes(b"weights"))
    assert stored.path == str(tmp_path / "members" / f"{hashlib.sha256(b'weights').hexdigest()}.keras")
    assert [path.name for path in (tmp_path / "members").iterdir()] == [Path(stored.path).name], "no temporary left"
    stored.verify()

    Path(stored.path).write_bytes(b"tampered")
    with pytest.raises(ChangedFileError, match="is missing or changed"):
        stored.verify()
    Path(stored.path).unlink()
    with pytest.raises(ChangedFileError, match="is missing or changed"):
        stored.verify()


def test_a_write_that_fails_stores_nothing(tmp_path):
    def fails(path):
        path.write_bytes(b"half")
        raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space"):
        store_by_digest(tmp_path, ".keras", fails)
    assert list(tmp_path.iterdir()) == []


def test_create_new_writes_once_and_never_replaces(tmp_path):
    target = tmp_path / "records" / "000001.json"
    assert create_new(target, b"first") is True
    assert create_new(target, b"second") is False
    assert target.read_bytes() == b"first"
    assert [path.name for path in target.parent.iterdir()] == ["000001.json"], "no temporary left"


def test_create_new_syncs_the_file_and_its_folder(tmp_path, monkeypatch):
    synced = []
    fsync = os.fsync

    def recording_fsync(descriptor):
        synced.append("folder" if stat.S_ISDIR(os.fstat(descriptor).st_mode) else "file")
        fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    create_new(tmp_path / "record.json", b"{}")
    assert synced == ["file", "folder"]
