import io
import logging

from mnist_pipeline.orchestration.console import (
    WithoutUserErrorTracebacks,
    hide_user_error_tracebacks,
    prefect_console_handlers,
)
from mnist_pipeline.training import TrainingDiverged


def log_failure(logger: logging.Logger, error: Exception) -> None:
    try:
        raise error
    except Exception:
        logger.exception("Task run failed with exception: %r", error)


def test_the_console_shows_a_user_error_in_one_line_and_the_api_logs_keep_its_traceback():
    console, api_logs = io.StringIO(), []

    class ApiHandler(logging.Handler):  # formats after the console handler, as Prefect's APILogHandler does
        def emit(self, record):
            api_logs.append(logging.Formatter().format(record))

    console_handler = logging.StreamHandler(console)
    console_handler.setFormatter(WithoutUserErrorTracebacks(logging.Formatter("%(levelname)s %(message)s")))
    logger = logging.getLogger("test-console")
    logger.propagate = False
    for handler in (console_handler, ApiHandler()):
        logger.addHandler(handler)

    log_failure(logger, TrainingDiverged("the loss became nan; lower the learning rate"))
    assert console.getvalue() == (
        "ERROR Task run failed with exception: TrainingDiverged('the loss became nan; lower the learning rate')\n"
    )
    log_failure(logger, KeyError("a bug"))
    assert "Traceback" in console.getvalue().split("KeyError('a bug')")[1], "a bug keeps its traceback"
    assert all("Traceback (most recent call last)" in message for message in api_logs) and len(api_logs) == 2


def test_every_prefect_console_handler_gets_the_formatter_once():
    hide_user_error_tracebacks()
    hide_user_error_tracebacks()
    formatters = [handler.formatter for handler in prefect_console_handlers()]
    assert formatters and all(isinstance(formatter, WithoutUserErrorTracebacks) for formatter in formatters)
    assert not any(isinstance(formatter.formatter, WithoutUserErrorTracebacks) for formatter in formatters)
