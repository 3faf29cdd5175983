"""A model registry on the file system: one folder per version, a champion pointer, atomic updates.

models/
  v0001/model.keras, metadata.json (and final_model.h5 when asked)
  champion.json     {"version": "v0001"}: switched atomically
  .lock             serializes version numbering and metadata updates across processes
"""

import fcntl
import getpass
import json
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mnist_pipeline import files, settings
from mnist_pipeline.approval import no_decision
from mnist_pipeline.errors import PipelineError

VERSION_PATTERN = re.compile(r"v\d{4,}")
MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"


class RegistryError(PipelineError):
    """A version that does not exist, or a registry without the version asked for."""


class Registry:
    """The versions under `root`; `default_registry()` is the one under the artifacts folder."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def versions(self) -> list[str]:
        if not self.root.is_dir():
            return []
        names = [p.name for p in self.root.iterdir() if p.is_dir() and VERSION_PATTERN.fullmatch(p.name)]
        return sorted(names, key=lambda name: int(name[1:]))

    def path(self, version: str) -> Path:
        return self.root / version

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A private folder to write a new version into; removed unless `publish` took it."""
        self.root.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(dir=self.root, prefix=".staging-"))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def publish(self, staged: Path, metadata: dict[str, Any]) -> str:
        """Write `metadata` into `staged` and make it the next version, in one rename."""
        with self.locked():
            versions = self.versions()
            version = f"v{int(versions[-1][1:]) + 1 if versions else 1:04d}"
            files.write_json(staged / METADATA_FILE, {**metadata, "version": version})
            staged.rename(self.path(version))
        return version

    def metadata(self, version: str) -> dict[str, Any]:
        path = self.path(version) / METADATA_FILE
        if not path.is_file():
            raise RegistryError(f"model version {version} does not exist in {self.root}; see `mnist-pipeline models`")
        return json.loads(path.read_text())

    def update_metadata(self, version: str, **changes: Any) -> dict[str, Any]:
        with self.locked():
            return self._update_metadata(version, changes)

    def _update_metadata(self, version: str, changes: dict[str, Any]) -> dict[str, Any]:
        metadata = {**self.metadata(version), **changes}
        files.write_json(self.path(version) / METADATA_FILE, metadata)
        return metadata

    def champion(self) -> str | None:
        pointer = self.root / "champion.json"
        return json.loads(pointer.read_text())["version"] if pointer.is_file() else None

    def promote(self, version: str, reason: str = "promoted by hand") -> str | None:
        """Make `version` the champion (one atomic switch of the pointer), a manual promotion or a
        rollback; returns the champion before."""
        with self.locked():
            previous = self.champion()
            self._promote(version, reason)
        return previous

    def _promote(self, version: str, reason: str) -> None:
        """Switch the pointer; the version's metadata keeps who promoted it, when, why and what it replaced."""
        record = {
            "at": datetime.now(UTC).isoformat(),
            "by": f"{getpass.getuser()}@{socket.gethostname()}",
            "reason": reason,
            "previous_champion": self.champion(),
        }
        promotions = self.metadata(version).get("promotions", [])
        self._update_metadata(version, {"status": "promoted", "promotions": [*promotions, record]})
        files.write_json(self.root / "champion.json", {"version": version})

    def verdict(self, version: str, tolerance: float, min_accuracy: float = 0.0) -> tuple[bool, str, str | None]:
        """(passes, reason, champion): whether `version`'s test accuracy is >= `min_accuracy` and >= the
        champion's - `tolerance`. Reads only."""
        champion = self.champion()
        accuracy = self.metadata(version)["test_metrics"]["accuracy"]
        if accuracy < min_accuracy:
            return (
                False,
                f"test accuracy {100 * accuracy:.3f}% < the floor min_accuracy {100 * min_accuracy:.3f}%",
                champion,
            )
        if champion is None:
            return True, "first version: no champion yet", None
        champion_accuracy = self.metadata(champion)["test_metrics"]["accuracy"]
        passes = accuracy >= champion_accuracy - tolerance
        reason = (
            f"test accuracy {100 * accuracy:.3f}% {'>=' if passes else '<'} champion {champion}'s "
            f"{100 * champion_accuracy:.3f}% - tolerance {100 * tolerance:.3f} points"
        )
        return passes, reason, champion

    def judge(
        self, version: str, tolerance: float, min_accuracy: float = 0.0, approval: dict[str, Any] | None = None
    ) -> tuple[bool, str, str | None]:
        """Promote `version` if it passes `verdict` (and `approval`, a person's decision, says approve), else
        mark it rejected; the approval goes into its metadata.

        One lock covers the comparison and the switch, so concurrent retrains cannot both replace
        the same champion. Returns (promoted, reason, the champion before).
        """
        with self.locked():
            promoted, reason, champion = self.verdict(version, tolerance, min_accuracy)
            if approval is not None:
                self._update_metadata(version, {"approval": approval})
                if promoted and approval["decision"] != "approve":
                    promoted = False
                    reason = (
                        f"{approval['decision']} by {approval['by']}: {approval['reason']} (the gate passed: {reason})"
                    )
            if promoted:
                self._promote(version, reason)
            else:
                self._update_metadata(version, {"status": "rejected", "rejection_reason": reason})
        return promoted, reason, champion

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

    def status(self, version: str, metadata: dict[str, Any]) -> str:
        """champion (the pointer's version), archived (a former champion), challenger or rejected."""
        if version == self.champion():
            return "champion"
        return "archived" if metadata.get("status") == "promoted" else metadata.get("status", "challenger")

    def expire_approval_requests(self) -> list[str]:
        """Versions whose approval request timed out, now recorded as rejected with "no decision"."""
        expired = []
        now = datetime.now(UTC)
        with self.locked():
            for version in self.versions():
                metadata = self.metadata(version)
                request = metadata.get("approval_request") or {}
                if metadata.get("status") == "awaiting approval" and datetime.fromisoformat(request["until"]) < now:
                    approval = no_decision(datetime.fromisoformat(request["until"]))
                    self._update_metadata(
                        version, {"status": "rejected", "rejection_reason": approval["reason"], "approval": approval}
                    )
                    expired.append(version)
        return expired

    def listing(self) -> list[dict[str, Any]]:
        self.expire_approval_requests()
        rows = []
        for version in self.versions():
            metadata = self.metadata(version)
            rows.append(
                {
                    "version": version,
                    "status": self.status(version, metadata),
                    "test_accuracy": (metadata.get("test_metrics") or {}).get("accuracy"),
                    "created_at": metadata.get("created_at"),
                    "parameters": metadata.get("parameters", {}),
                    "data": metadata.get("data", {}),
                }
            )
        return rows


def default_registry() -> Registry:
    """The registry every command and flow uses: `settings.models_dir()`."""
    return Registry(settings.models_dir())
