"""`mnist-pipeline`: run the flows from a shell. Options mirror each flow's typed parameters."""

import argparse
import atexit
import contextlib
import importlib
import inspect
import json
import logging
import os
import sys
import types
import typing
from collections.abc import Callable
from typing import Any

import pydantic

from mnist_pipeline import commands
from mnist_pipeline.errors import PipelineError

# subcommand -> (flow module, flow function, help); a flow is imported when its subcommand runs
FLOWS = {
    "cv": ("mnist_pipeline.flows.cross_validate", "cross_validate", "cross-validate a model (flow cross-validate)"),
    "compare": (
        "mnist_pipeline.flows.compare",
        "compare",
        "cross-validate several variants side by side (flow compare)",
    ),
    "finalize": (
        "mnist_pipeline.flows.finalize",
        "finalize",
        "train on all training images and register a version (flow finalize)",
    ),
    "evaluate": (
        "mnist_pipeline.flows.evaluate",
        "evaluate",
        "test-set metrics of a registered version (flow evaluate)",
    ),
    "retrain": (
        "mnist_pipeline.flows.retrain",
        "retrain",
        "finalize, evaluate, and promote if at least as good (flow retrain)",
    ),
    "predict": ("mnist_pipeline.flows.predict", "predict", "predict the digits in image files (flow predict)"),
    "monitor": (
        "mnist_pipeline.flows.monitor",
        "monitor",
        "judge the served model's recent predictions against its reference (flow monitor)",
    ),
}
# What a flow imports in this process after it starts, imported up front instead: while the temporary server starts.
IMPORTED_WHILE_THE_SERVER_STARTS = {
    "cv": ["sklearn.model_selection"],
    "compare": ["sklearn.model_selection"],
    "evaluate": ["keras"],
    "predict": ["keras"],
}
# Optional packages kept out of a command that never uses them. Keras imports scikit-learn (with much of SciPy) for
# its scikit-learn wrappers and matplotlib for its image galleries: 0.8 s of Keras's 3 s import, idle.
KEPT_OUT = {"predict": ["sklearn", "matplotlib"]}
OPTION_NAMES = {"output_dir": "--output"}
POSITIONAL = {"images"}


class UsageError(PipelineError):
    """Bad command-line input, reported as one line (exit code 2)."""


@contextlib.contextmanager
def kept_out(packages: list[str]):
    """Imports inside find `packages` not installed (`import` raises ImportError for a None in sys.modules),
    unless already imported; afterwards they import as usual."""
    absent = [package for package in packages if package not in sys.modules]
    sys.modules.update(dict.fromkeys(absent))
    try:
        yield
    finally:
        for package in absent:
            del sys.modules[package]


def option_name(parameter: str) -> str:
    return OPTION_NAMES.get(parameter, "--" + parameter.replace("_", "-"))


def load_flow(command: str):
    module, name, _ = FLOWS[command]
    return getattr(importlib.import_module(module), name)


def bare(annotation: Any) -> Any:
    """The type under `Annotated[...]` (bounds, form titles) and `| None`: `list[str]`, `bool`, ..."""
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif typing.get_origin(annotation) in (typing.Union, types.UnionType):
            annotation = next(argument for argument in typing.get_args(annotation) if argument is not type(None))
        else:
            return annotation


def is_list(annotation: Any) -> bool:
    """`list[...]`, bare, optional or annotated: given on the command line as comma-separated values."""
    return typing.get_origin(bare(annotation)) is list


def add_flow_options(parser: argparse.ArgumentParser, flow) -> None:
    """An argument per flow parameter, described by the flow's docstring; values are validated later."""
    properties = flow.parameters.properties
    for name, parameter in inspect.signature(flow.fn).parameters.items():
        schema = properties[name]
        description = " ".join(schema.get("description", "").split()).replace("%", "%%")  # argparse formats help
        if name in POSITIONAL:
            parser.add_argument(name, nargs="+", metavar=name.upper(), help=description)
            continue
        default = "" if parameter.default in (None, "", []) else f" (default: {parameter.default})"
        if bare(parameter.annotation) is bool:
            parser.add_argument(
                option_name(name), dest=name, action="store_true", default=argparse.SUPPRESS, help=description
            )
            continue
        choices = schema.get("enum") or schema.get("items", {}).get("enum")
        metavar = "{" + ",".join(choices) + "}" if choices else name.upper()
        parser.add_argument(
            option_name(name),
            dest=name,
            default=argparse.SUPPRESS,
            type=(lambda text: text.split(",")) if is_list(parameter.annotation) else str,
            metavar=metavar + (",..." if is_list(parameter.annotation) else ""),
            help=description + default,
        )


def validate(flow, values: dict[str, Any]) -> dict[str, Any]:
    """Values cast to the flow's parameter types, or UsageError naming the first bad option."""
    fields = {
        name: (parameter.annotation, ... if parameter.default is inspect.Parameter.empty else parameter.default)
        for name, parameter in inspect.signature(flow.fn).parameters.items()
    }
    model = pydantic.create_model(f"{flow.name}-parameters", **fields)
    try:
        validated = model.model_validate(values)
    except pydantic.ValidationError as error:
        problem = error.errors()[0]
        name = str(problem["loc"][0])
        shown = name.upper() if name in POSITIONAL else option_name(name)
        raise UsageError(f"invalid {shown} {problem['input']!r}: {problem['msg']}") from None
    return {name: getattr(validated, name) for name in values}


def show_cv(summary, _) -> int:
    from mnist_pipeline.reports import study_lines

    print("\n".join(study_lines(summary.accuracies)))
    print(f"Results: {summary.output_dir}")
    return 0


def show_compare(summary, _) -> int:
    for row in summary.rows:
        print(
            f"{row['variant']}: mean={100 * row['mean']:.3f} std={100 * row['std']:.3f}, n={row['n']}, {row['seconds']:.0f} s"
        )
    print(f"Results: {summary.output_dir}")
    return 0


def show_finalize(summary, _) -> int:
    print(f"Model version {summary.version}: {summary.model_path}")
    print(f"Results: {summary.output_dir}")
    return 0


def show_evaluate(summary, _) -> int:
    print(f"> {100 * summary.accuracy:.3f}")
    print(f"Loss: {summary.loss:.4f} (model {summary.version})")
    print(f"Results: {summary.output_dir}")
    return 0


def show_retrain(promotion, _) -> int:
    if promotion.version is None:
        print(promotion.reason)  # nothing new: nothing trained
    else:
        print(
            f"{promotion.version} {'is the new champion' if promotion.promoted else 'was rejected'}: {promotion.reason}"
        )
    print(f"Results: {promotion.output_dir}")
    return 0


def show_predict(summary, as_json: bool) -> int:
    """Text lines, or one JSON array on stdout (and where the results are on stderr)."""
    if as_json:
        print(json.dumps(summary.predictions))
    for result in [] if as_json else summary.predictions:
        if "error" in result:
            print(f"{result['file']}: error: {result['error']}")
        else:
            print(f"{result['file']}: {result['digit']} (p={max(result['probabilities']):.3f})")
    print(f"Results: {summary.output_dir}", file=sys.stderr if as_json else sys.stdout)
    return 1 if any("error" in result for result in summary.predictions) else 0


def show_monitor(summary, _) -> int:
    print(f"{summary.version or 'no version'}: {summary.verdict}: {summary.reason}")
    if summary.event:
        print(f"sent the event {summary.event}")
    print(f"Results: {summary.output_dir}")
    return 0


SHOW: dict[str, Callable[[Any, bool], int]] = {
    "cv": show_cv,
    "compare": show_compare,
    "finalize": show_finalize,
    "evaluate": show_evaluate,
    "retrain": show_retrain,
    "predict": show_predict,
    "monitor": show_monitor,
}


def list_models(as_json: bool) -> int:
    from mnist_pipeline.registry import default_registry

    rows = default_registry().listing()
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'version':8} {'status':17} {'test acc.':>9}  {'created at':19} parameters")
    for row in rows:
        accuracy = "" if row["test_accuracy"] is None else f"{100 * row['test_accuracy']:.3f}"
        parameters = " ".join(f"{k}={v}" for k, v in row["parameters"].items() if v is not None and k != "output_dir")
        print(f"{row['version']:8} {row['status']:17} {accuracy:>9}  {(row['created_at'] or '')[:19]:19} {parameters}")
    return 0


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every subcommand; only `command`'s flow is imported for its options (importing Prefect and a flow
    takes seconds that `promote`, `data` or `--help` need not pay)."""
    parser = argparse.ArgumentParser(prog="mnist-pipeline", description="The MNIST CNN study as Prefect flows.")
    subcommands = parser.add_subparsers(dest="command", required=True)
    for name, (_, _, help_text) in FLOWS.items():
        subparser = subcommands.add_parser(name, help=help_text)
        if name == command:
            add_flow_options(subparser, load_flow(name))
        if name == "predict":
            subparser.add_argument("--json", action="store_true", help="print one JSON array, an object per file")
    models = subcommands.add_parser("models", help="list the registered model versions")
    models.add_argument("--json", action="store_true", help="print JSON")
    commands.add_subcommands(subcommands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs a subcommand; a PipelineError is printed in one line, any other exception (a bug) with its traceback."""
    # Prefect's temporary server would otherwise try to send telemetry, and log each failure offline.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    argv = sys.argv[1:] if argv is None else argv
    command = next((word for word in argv if not word.startswith("-")), None)
    server = None
    if command in FLOWS and not {"-h", "--help"} & set(argv):
        # The server starts while Prefect and the flow are imported.
        from mnist_pipeline.orchestration.temporary_server import launch_temporary_server

        server = launch_temporary_server()
        server = server and server.adopt()
    arguments = vars(build_parser(command).parse_args(argv))
    command = arguments.pop("command")
    as_json = arguments.pop("json", False)
    try:
        if command == "models":
            return list_models(as_json)
        if command in commands.COMMANDS:
            return commands.run(command, arguments, as_json)
        flow = load_flow(command)
        values = validate(flow, arguments)
        from mnist_pipeline.orchestration.console import hide_user_error_tracebacks

        hide_user_error_tracebacks()
        with kept_out(KEPT_OUT.get(command, [])):
            for module in IMPORTED_WHILE_THE_SERVER_STARTS.get(command, []):
                importlib.import_module(module)
        if server:
            server.wait_until_ready()
        with server.run_settings() if server else contextlib.nullcontext():
            result = flow(**values)
        return SHOW[command](result, as_json)
    except PipelineError as error:
        print(f"mnist-pipeline {command}: error: {error}", file=sys.stderr)
        return 2 if isinstance(error, UsageError) else 1


def run() -> None:
    """The `mnist-pipeline` command: `main`, then an exit that skips the interpreter's teardown of the modules
    (1-2 s on a loaded machine, freeing Prefect, matplotlib and TensorFlow object by object) once every exit handler has run."""
    exit_code = 1  # an exception that escapes `main` is a bug: its traceback is printed first

    def exit_without_teardown() -> None:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exit_code)

    atexit.register(exit_without_teardown)  # registered first, so it runs after every other exit handler
    try:
        exit_code = main()
    except SystemExit as stop:  # argparse's usage errors and --help
        exit_code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
        raise
    sys.exit(exit_code)


if __name__ == "__main__":
    run()
