"""`mnist-pipeline`: run the flows from a shell. Options mirror each flow's typed parameters."""

import argparse
import importlib
import inspect
import logging
import sys
from typing import Any

import pydantic

# subcommand -> (flow module, flow function); imported only when that subcommand runs
COMMANDS = {"cv": ("flows.cross_validate", "cross_validate")}
OPTION_NAMES = {"output_dir": "--output"}


class UsageError(Exception):
    """Bad command-line input, reported as one line."""


def option_name(parameter: str) -> str:
    return OPTION_NAMES.get(parameter, "--" + parameter.replace("_", "-"))


def load_flow(command: str):
    module, name = COMMANDS[command]
    return getattr(importlib.import_module(module), name)


def add_flow_options(parser: argparse.ArgumentParser, flow) -> None:
    """An option per flow parameter, described by the flow's docstring; values are validated later."""
    properties = flow.parameters.properties
    for name, parameter in inspect.signature(flow.fn).parameters.items():
        schema = properties[name]
        choices = schema.get("enum")
        description = " ".join(schema.get("description", "").split())
        default = "" if parameter.default is None else f" (default: {parameter.default})"
        parser.add_argument(
            option_name(name),
            dest=name,
            default=argparse.SUPPRESS,
            metavar="{" + ",".join(choices) + "}" if choices else name.upper(),
            help=description + default,
        )


def validate(flow, values: dict[str, Any]) -> dict[str, Any]:
    """Values cast to the flow's parameter types, or UsageError naming the first bad option."""
    fields = {
        name: (parameter.annotation, parameter.default)
        for name, parameter in inspect.signature(flow.fn).parameters.items()
    }
    model = pydantic.create_model(f"{flow.name}-parameters", **fields)
    try:
        validated = model.model_validate(values)
    except pydantic.ValidationError as error:
        problem = error.errors()[0]
        name = str(problem["loc"][0])
        raise UsageError(f"invalid {option_name(name)} {problem['input']!r}: {problem['msg']}") from None
    return {name: getattr(validated, name) for name in values}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mnist-pipeline", description="The MNIST CNN study as Prefect flows.")
    subcommands = parser.add_subparsers(dest="command", required=True)
    cv = subcommands.add_parser("cv", help="cross-validate a model (flow cross-validate)")
    add_flow_options(cv, load_flow("cv"))
    return parser


class HideUserErrorTracebacks(logging.Filter):
    """Bad input (a ValueError) is reported in one line: drop its traceback from console logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], ValueError):
            record.exc_info = record.exc_text = None
        return True


def quiet_user_error_tracebacks() -> None:
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger()] + [logging.getLogger(name) for name in logging.root.manager.loggerDict]
    for handler in {h for logger in loggers for h in getattr(logger, "handlers", [])}:
        if isinstance(handler, PrefectConsoleHandler):
            handler.addFilter(HideUserErrorTracebacks())


def run_cv(values: dict[str, Any]) -> None:
    from mnist_pipeline.reports import study_lines

    flow = load_flow("cv")
    quiet_user_error_tracebacks()
    summary = flow(**validate(flow, values))
    print("\n".join(study_lines(summary.accuracies)))
    print(f"Results: {summary.output_dir}")


def main(argv: list[str] | None = None) -> int:
    arguments = vars(build_parser().parse_args(argv))
    command = arguments.pop("command")
    try:
        {"cv": run_cv}[command](arguments)
    except (UsageError, ValueError) as error:
        print(f"mnist-pipeline {command}: error: {error}", file=sys.stderr)
        return 2 if isinstance(error, UsageError) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
