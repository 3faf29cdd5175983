"""Prefect homes for the processes tests start, each holding a copy of one SQLite database migrated once per
test session: a server on a new database spends about 10 s migrating it before it answers, and 5-6 s starting
on a migrated one."""

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PREFECT = str(Path(sys.executable).parent / "prefect")


@functools.cache
def migrated_database() -> Path:
    """prefect.db of a Prefect home whose database `prefect server database upgrade` brought to the newest schema."""
    home = Path(tempfile.mkdtemp(prefix="prefect-migrated-"))
    atexit.register(shutil.rmtree, home, True)
    environment = {name: value for name, value in os.environ.items() if not name.startswith("PREFECT_")}
    upgrade = subprocess.run(
        [PREFECT, "server", "database", "upgrade", "--yes"],
        env={**environment, "PREFECT_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert upgrade.returncode == 0, f"prefect server database upgrade failed:\n{upgrade.stdout}\n{upgrade.stderr}"
    return home / "prefect.db"


def prefect_home(path: Path) -> Path:
    """`path` as a Prefect home whose server starts on a migrated database (its own copy)."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_database(), path / "prefect.db")
    return path
