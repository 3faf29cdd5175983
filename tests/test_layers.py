"""The package's layers import downwards only: the core (pure functions on arrays and files) knows nothing of
Prefect's orchestration, the tasks, the flows or the service; orchestration helpers know no task or flow; tasks
know no flow. An upward import is found by parsing every module's imports, wherever in the module it stands."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "mnist_pipeline"
# Each layer and the packages above it, which its modules must not import. `commands` is the command line's own
# entry point beside flows/cli.py: it starts the service and sends events, so it stands above them.
ABOVE = {
    "core": ("orchestration", "tasks", "flows", "serving", "commands"),
    "orchestration": ("tasks", "flows", "serving", "commands"),
    "tasks": ("flows", "serving", "commands"),
    "serving": ("tasks", "flows", "commands"),
}
FOLDERS = {"orchestration": "mnist_pipeline/orchestration", "tasks": "tasks", "serving": "mnist_pipeline/serving"}


def modules_of(layer: str) -> list[Path]:
    if layer == "core":
        return [path for path in (ROOT / PACKAGE).glob("*.py") if path.name != "commands.py"]
    return sorted((ROOT / FOLDERS[layer]).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module name `path` imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def upward(path: Path, layer: str) -> list[str]:
    forbidden = tuple(f"{PACKAGE}.{name}" for name in ABOVE[layer])
    return sorted(
        name for name in imported(path) if name in forbidden or name.startswith(tuple(f"{f}." for f in forbidden))
    )


@pytest.mark.parametrize("layer", ABOVE)
def test_no_module_imports_a_layer_above_its_own(layer):
    paths = modules_of(layer)
    assert paths, f"no modules found for the layer {layer}"
    violations = {str(path.relative_to(ROOT)): names for path in paths if (names := upward(path, layer))}
    assert violations == {}


def test_the_check_finds_an_upward_import_anywhere_in_a_module(tmp_path):
    module = tmp_path / "module.py"
    module.write_text("import numpy\n\ndef late():\n    from mnist_pipeline.tasks.registry import register_model\n")
    assert upward(module, "core") == ["mnist_pipeline.tasks.registry", "mnist_pipeline.tasks.registry.register_model"]
    module.write_text("from mnist_pipeline import flows\nimport mnist_pipeline.serving.app\n")
    assert upward(module, "orchestration") == ["mnist_pipeline.flows", "mnist_pipeline.serving.app"]
    assert upward(module, "serving") == ["mnist_pipeline.flows"]
