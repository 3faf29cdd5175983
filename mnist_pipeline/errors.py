"""The one base of the errors a user can fix, and OS errors about a path turned into one of them."""

import os
from collections.abc import Iterator
from contextlib import contextmanager


class PipelineError(Exception):
    """Something the user can fix: bad input or data, a setting that points nowhere, training that diverged.

    Its message says what was wrong and how to fix it. The command line prints it in one line, without
    a traceback; every other exception is a bug and keeps its traceback.
    """


@contextmanager
def naming_the_setting(setting: str, path: str | os.PathLike, action: str, fix: str) -> Iterator[None]:
    """OS errors in the block become a PipelineError naming the option or setting that `path` came from:
    `output_dir /proc/nope: cannot create the folder (No such file or directory); pass a writable folder`."""
    try:
        yield
    except OSError as error:
        raise PipelineError(f"{setting} {path}: {action} ({error.strerror or error}); {fix}") from error
