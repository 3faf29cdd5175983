"""The model registry, on a local disk or any fsspec store (a bucket shared by several machines).

models/
  v0001/model.keras, metadata.json (and final_model.h5 when asked): a version exists once its metadata.json does
  v0001/reference.npz             what the monitor compares served predictions with (made at registration, or later)
  v0001/changes/000001.json, ...  later changes of its metadata (test metrics, status, approval), in order
  champion/000001.json, ...       every promotion: {version, previous_champion, at, by, reason}; the newest rules
  claims/v0001                    (remote stores) the version number taken by a publication

Why conditional writes and not a lock: machines share the store, not a lock server (each CLI run may have its own
temporary Prefect server, and a local file lock reaches one machine only), and every store can create an object
only if it is absent (`shared_store.create_exclusive`). So nothing is ever rewritten: each change is a new object
whose name is the next number of its sequence, and a writer that loses the race for a number re-reads what won
and tries the next one. Concurrent publications therefore get distinct versions, no metadata change is lost, and
the champion is the one newest promotion record: two concurrent promotions are ordered, never two champions, and
`judge` compares against the champion it finally replaces. Files are written before the object that makes them
visible (a local version folder is renamed into place whole; on a remote store the number is claimed, the files
uploaded, the metadata created last), so a crash leaves no half version, at most a skipped number.
Models on a remote store are fetched once into the local `fetched/` folder, verified by the digest in the metadata.
What the registry stores, it does not decide: the gate (`gate.py`) and a person's review (`approval.py`) do.
"""

import errno
import getpass
import json
import re
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, TypedDict

from mnist_pipeline import files, settings
from mnist_pipeline.approval import Review, expiry
from mnist_pipeline.errors import PipelineError
from mnist_pipeline.gate import Gate, Status, Verdict
from mnist_pipeline.shared_store import NumberedRecords, create_exclusive, fetch_verified, open_store

VERSION_PATTERN = re.compile(r"v\d{4,}")
MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
REFERENCE_FILE = "reference.npz"  # what the monitor compares served predictions with (monitoring/reference.py)
LEGACY_CHAMPION_FILE = "champion.json"  # the pointer of registries made before the promotion records
CHAMPION_RECORD_FIX = "remove that record (the promotion before it rules again) or restore it from a backup"


class RegistryError(PipelineError):
    """A version that does not exist, or a registry without the version asked for."""


class Judgement(NamedTuple):
    """What `Registry.judge` decided: whether the version became champion, why, and the champion it was compared
    with (the one it replaced, if promoted)."""

    promoted: bool
    reason: str
    previous_champion: str | None


class VersionRow(TypedDict):
    """A version in `Registry.listing`, as `mnist-pipeline models --json` prints it."""

    version: str
    status: Status
    test_accuracy: float | None
    created_at: str | None
    parameters: dict[str, Any]
    data: dict[str, Any]


class Registry:
    """The versions under `root` (a folder or a URL); `default_registry()` is the one under the shared root."""

    def __init__(self, root: str | Path):
        self.remote = settings.is_remote(str(root))
        self.root: str | Path = str(root).rstrip("/") if self.remote else Path(root)
        self.fs, self._path = open_store(root)

    def _key(self, *parts: str) -> str:
        return "/".join([self._path, *parts])

    def _read_json(self, key: str) -> Any:
        return json.loads(self.fs.cat_file(key))

    def _log(self, *folder: str) -> NumberedRecords:
        return NumberedRecords(self.fs, self._key(*folder))

    def versions(self) -> list[str]:
        if self.remote:
            found = (path.rsplit("/", 2)[-2] for path in self.fs.glob(self._key("v*", METADATA_FILE)))
            names = [name for name in found if VERSION_PATTERN.fullmatch(name)]
        elif self.root.is_dir():
            names = [p.name for p in self.root.iterdir() if p.is_dir() and VERSION_PATTERN.fullmatch(p.name)]
        else:
            return []
        return sorted(names, key=lambda name: int(name[1:]))

    def path(self, version: str) -> str | Path:
        return f"{self.root}/{version}" if self.remote else self.root / version

    def model_file(self, version: str, name: str = MODEL_FILE) -> Path:
        """The version's file `name` on this machine: in the registry's folder, or fetched once from a remote
        store into `settings.fetch_dir()`, verified against the digest its metadata records."""
        if not self.remote:
            return self.root / version / name
        sha256 = self.metadata(version)["files"][name]
        return fetch_verified(self.fs, self._key(version, name), sha256, Path(name).suffix)

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A private local folder to write a new version into; removed unless `publish` took it."""
        parent = None if self.remote else self.root
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(dir=parent, prefix=".staging-"))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _next_number(self) -> int:
        taken = self.versions()
        if self.remote:
            claims = (name.rsplit("/", 1)[-1] for name in self._list("claims"))
            taken += [name for name in claims if VERSION_PATTERN.fullmatch(name)]
        return max((int(name[1:]) for name in taken), default=0) + 1

    def _list(self, *folder: str) -> list[str]:
        try:
            return self.fs.ls(self._key(*folder), detail=False)
        except FileNotFoundError:
            return []

    def publish(self, staged: Path, metadata: dict[str, Any]) -> str:
        """Make the files in `staged`, with `metadata`, the next version: whole, under a number nobody else gets."""
        while True:
            version = f"v{self._next_number():04d}"
            if self.remote:
                if self._publish_remote(staged, metadata, version):
                    return version
                continue
            files.write_json(staged / METADATA_FILE, {**metadata, "version": version})
            try:
                staged.rename(self.path(version))  # fails if another publication took the number
            except OSError as error:
                if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                continue
            return version

    def _publish_remote(self, staged: Path, metadata: dict[str, Any], version: str) -> bool:
        claim = {"at": datetime.now(UTC).isoformat(), "by": who()}
        if not create_exclusive(self.fs, self._key("claims", version), json.dumps(claim).encode()):
            return False
        digests = {}
        for path in sorted(staged.iterdir()):
            if path.name != METADATA_FILE:
                digests[path.name] = files.file_sha256(path)
                self.fs.put_file(str(path), self._key(version, path.name))
        record = {**metadata, "version": version, "files": digests}
        created = create_exclusive(self.fs, self._key(version, METADATA_FILE), json.dumps(record, indent=2).encode())
        if not created:
            raise RegistryError(f"{self.root}/{version}/{METADATA_FILE} exists although this run claimed {version}")
        return True

    def reference(self, version: str) -> bytes | None:
        """The version's monitoring reference as stored; None for a version registered before references."""
        self.metadata(version)
        try:
            return self.fs.cat_file(self._key(version, REFERENCE_FILE))
        except FileNotFoundError:
            return None

    def add_reference(self, version: str, data: bytes) -> bool:
        """Store `data` as the reference of a version registered without one, unless another writer did first:
        True if this call stored it. A reference made at registration is one of the version's files instead."""
        self.metadata(version)
        return create_exclusive(self.fs, self._key(version, REFERENCE_FILE), data)

    def metadata(self, version: str) -> dict[str, Any]:
        """The version's metadata with its changes applied in order."""
        return self._with_changes(version, self._base(version), self._log(version, "changes").names())

    def _base(self, version: str) -> dict[str, Any]:
        try:
            return self._read_json(self._key(version, METADATA_FILE))
        except FileNotFoundError:
            raise RegistryError(
                f"model version {version} does not exist in {self.root}; see `mnist-pipeline models`"
            ) from None

    def _with_changes(self, version: str, metadata: dict[str, Any], changes: list[str]) -> dict[str, Any]:
        log = self._log(version, "changes")
        for name in changes:
            metadata.update(log.read(name))
        return metadata

    def update_metadata(self, version: str, **changes: Any) -> dict[str, Any]:
        return self._change(version, lambda metadata: changes)

    def _change(self, version: str, compute: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Append `compute(the metadata now)` as the version's next change; recomputed if another writer got
        there first, so that a change made from the metadata it read loses none of the other's."""
        while True:
            log = self._log(version, "changes")
            records = log.names()
            metadata = self._with_changes(version, self._base(version), records)
            changes = compute(metadata)
            if not changes or log.append(changes, records):
                return {**metadata, **changes}

    def _champion_records(self) -> tuple[list[str], str | None]:
        records = self._log("champion").names()
        key = self._key("champion", records[-1]) if records else self._key(LEGACY_CHAMPION_FILE)
        try:
            record = self._read_json(key)
        except FileNotFoundError:
            if records:
                raise
            return records, None
        except ValueError as error:
            raise RegistryError(f"champion record {key} is not JSON ({error}); {CHAMPION_RECORD_FIX}") from None
        return records, champion_version(record, key)

    def champion(self) -> str | None:
        return self._champion_records()[1]

    def promote(self, version: str, reason: str = "promoted by hand") -> str | None:
        """Make `version` the champion, a manual promotion or a rollback; returns the champion before."""
        self.metadata(version)
        return self._promote_if(version, lambda champion: Verdict(True, reason, champion, None, None)).champion

    def _promote_if(self, version: str, decide: Callable[[str | None], Verdict]) -> Verdict:
        """Append a promotion of `version` if `decide(the champion now)` passes it; decided again against the new
        champion if another promotion got there first. The version's metadata then keeps who promoted it, when,
        why and what it replaced. Returns the last verdict."""
        while True:
            records, champion = self._champion_records()
            verdict = decide(champion)
            if not verdict.passes:
                return verdict
            record = {
                "version": version,
                "at": datetime.now(UTC).isoformat(),
                "by": who(),
                "reason": verdict.reason,
                "previous_champion": champion,
            }
            if self._log("champion").append(record, records):
                break
        del record["version"]
        self._change(
            version,
            lambda metadata: {"status": Status.PROMOTED, "promotions": [*metadata.get("promotions", []), record]},
        )
        return verdict

    def test_accuracy(self, version: str) -> float | None:
        """The version's MNIST test accuracy; None until it is evaluated."""
        return (self.metadata(version).get("test_metrics") or {}).get("accuracy")

    def verdict(self, version: str, tolerance: float, min_accuracy: float = 0.0) -> Verdict:
        """The gate's verdict on `version` against the champion now. Reads only."""
        return self._verdict_against(version, Gate(tolerance, min_accuracy), self.champion())

    def _verdict_against(self, version: str, gate: Gate, champion: str | None) -> Verdict:
        accuracy = self.test_accuracy(version)
        if accuracy is None:
            raise RegistryError(f"model version {version} has no test metrics to judge; evaluate it first")
        return gate.verdict(accuracy, champion, champion and self.test_accuracy(champion))

    def judge(
        self, version: str, tolerance: float, min_accuracy: float = 0.0, review: Review | None = None
    ) -> Judgement:
        """Promote `version` if it passes the gate (and `review`, a decision on it, is an approval), else mark it
        rejected; the review goes into its metadata.

        The promotion is a record appended after the champion it compared with; if another promotion got there
        first, `version` is judged again against the new champion, so concurrent retrains never both replace
        the same champion and each decision is recorded.
        """
        gate = Gate(tolerance, min_accuracy)

        def decide(champion: str | None) -> Verdict:
            verdict = self._verdict_against(version, gate, champion)
            return verdict if review is None else review.applied_to(verdict)

        verdict = self._promote_if(version, decide)
        changes = {} if review is None else {"approval": review.record()}
        if not verdict.passes:
            changes.update(status=Status.REJECTED, rejection_reason=verdict.reason)
        if changes:
            self.update_metadata(version, **changes)
        return Judgement(verdict.passes, verdict.reason, verdict.champion)

    def resolve(self, spec: str) -> str:
        """`champion`, `latest` or a version name, as an existing version."""
        if spec == "champion":
            version = self.champion()
            if version is None:
                raise RegistryError(
                    f"no champion model in {self.root} yet; run `mnist-pipeline retrain` first, or pass a version"
                )
        elif spec == "latest":
            versions = self.versions()
            if not versions:
                raise RegistryError(f"no model versions in {self.root} yet; run `mnist-pipeline finalize` first")
            version = versions[-1]
        elif VERSION_PATTERN.fullmatch(spec):
            version = spec
        else:
            raise RegistryError(f"model version must be champion, latest or vNNNN, got {spec!r}")
        self.metadata(version)
        return version

    def _current(self, version: str, now: datetime) -> dict[str, Any]:
        """The version's metadata, with an approval request that timed out before `now` recorded as rejected."""
        return self._change(version, partial(expiry, now=now))

    def expire_approval_requests(self) -> list[str]:
        """Versions whose approval request timed out, now recorded as rejected with "no decision"."""
        now = datetime.now(UTC)
        expired = [version for version in self.versions() if expiry(self.metadata(version), now)]
        for version in expired:
            self._current(version, now)
        return expired

    def listing(self) -> list[VersionRow]:
        """Every version's row, timed-out approval requests recorded first; the champion is read once."""
        now, champion = datetime.now(UTC), self.champion()
        rows = []
        for version in self.versions():
            metadata = self._current(version, now)
            rows.append(
                VersionRow(
                    version=version,
                    status=status(version, metadata, champion),
                    test_accuracy=(metadata.get("test_metrics") or {}).get("accuracy"),
                    created_at=metadata.get("created_at"),
                    parameters=metadata.get("parameters", {}),
                    data=metadata.get("data", {}),
                )
            )
        return rows


def champion_version(record: Any, key: str) -> str:
    """The version a promotion record names, checked: it becomes part of paths."""
    version = record.get("version") if isinstance(record, dict) else None
    if not isinstance(version, str) or not VERSION_PATTERN.fullmatch(version):
        raise RegistryError(
            f"champion record {key} names {str(version)[:40]!r}, not a model version vNNNN; {CHAMPION_RECORD_FIX}"
        )
    return version


def status(version: str, metadata: dict[str, Any], champion: str | None) -> Status:
    """champion, archived (a former champion), or the status its metadata records (challenger by default)."""
    if version == champion:
        return Status.CHAMPION
    recorded = Status(metadata.get("status", Status.CHALLENGER))
    return Status.ARCHIVED if recorded is Status.PROMOTED else recorded


def who() -> str:
    """user@host of this process, for the records of who did what."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


def default_registry() -> Registry:
    """The registry every command and flow uses: `models/` under the shared root."""
    return Registry(settings.models_location())
