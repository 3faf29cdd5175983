"""Digest of a module's source and of every project module it imports, read without importing them.

The cache keys use it: results made by a module's code must not outlive an edit of that code or of
anything it imports, however indirectly. Imports are found by parsing the source (TensorFlow is
never loaded to compute it), including imports inside functions.
"""

import ast
import functools
import hashlib
import importlib.util
from pathlib import Path

PACKAGE = "mnist_pipeline"


def source_path(module: str) -> Path:
    """The file of one of the project's modules, found without importing it (no TensorFlow here)."""
    return Path(importlib.util.find_spec(module).origin)


def read_source(module: str) -> bytes:
    return source_path(module).read_bytes()


def is_package(module: str) -> bool:
    return source_path(module).name == "__init__.py"


def _project_modules(name: str) -> list[str]:
    """`name` and the packages an import of it runs first, if it is one of the project's modules."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return []
    return [".".join(parts[:end]) for end in range(1, len(parts) + 1)]


def imported_modules(module: str) -> set[str]:
    """The project's modules that `module`'s source imports anywhere (function bodies too), with their packages."""
    package = module if is_package(module) else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(read_source(module))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.update(_project_modules(alias.name))
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            found.update(_project_modules(base))
            if base.split(".")[0] == PACKAGE and is_package(base):
                for alias in node.names:  # `from package import module`
                    candidate = f"{base}.{alias.name}"
                    if importlib.util.find_spec(candidate) is not None:
                        found.add(candidate)
    return found


def module_dependencies(module: str) -> list[str]:
    """`module` and every project module it imports, directly or through others, sorted."""
    seen, pending = set(), [*_project_modules(module)]
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(imported_modules(name) - seen)
    return sorted(seen)


@functools.cache
def code_version(module: str) -> str:
    """Digest of the source of `module` and of the project modules it depends on: editing any of them
    invalidates the results cached by the tasks it defines."""
    digest = hashlib.sha256()
    for name in module_dependencies(module):
        source = read_source(name)
        digest.update(f"{name}:{len(source)}:".encode() + source)
    return digest.hexdigest()[:16]
