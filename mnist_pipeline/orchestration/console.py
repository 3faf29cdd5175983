"""The console shows a user error (PipelineError) in one line; the run's logs on the server keep its traceback."""

import logging

from prefect.logging.configuration import ensure_logging_setup
from prefect.logging.handlers import PrefectConsoleHandler

from mnist_pipeline.errors import PipelineError


class WithoutUserErrorTracebacks(logging.Formatter):
    """Formats a record as `formatter` does, leaving out the traceback of a PipelineError.

    It formats a copy: the record itself keeps its traceback for the other handlers (the one that sends
    the logs to the Prefect API).
    """

    def __init__(self, formatter: logging.Formatter | None):
        super().__init__()
        self.formatter = formatter or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and isinstance(record.exc_info[1], PipelineError):
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        return self.formatter.format(record)


def prefect_console_handlers() -> set[PrefectConsoleHandler]:
    """Those of this process, Prefect's logging set up first if it is not yet."""
    ensure_logging_setup()
    loggers = [logging.getLogger(), *logging.root.manager.loggerDict.values()]  # and placeholders, without handlers
    return {h for logger in loggers for h in getattr(logger, "handlers", []) if isinstance(h, PrefectConsoleHandler)}


def hide_user_error_tracebacks() -> None:
    """On every Prefect console handler of this process."""
    for handler in prefect_console_handlers():
        if not isinstance(handler.formatter, WithoutUserErrorTracebacks):
            handler.setFormatter(WithoutUserErrorTracebacks(handler.formatter))
