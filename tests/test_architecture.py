"""The package's shape: stages import only downwards, no file imports itself in a circle, and an
import inside a function says why it is there (docs/development.md, "Layout")."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "kpireport"

# Lower stages first; a module may import its own stage and the stages before it.
STAGES = ["core", "read", "score", "report", "deliver", "month", "data_in", "api", "cli", "web"]
RANK = {"core": 0, "read": 1, "score": 2, "report": 3, "deliver": 4, "month": 5, "data_in": 6,
        "api": 7, "cli": 8, "web": 8}
TOP = 9  # kpireport/__init__.py and __main__.py: the public names and the command


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, int, bool, ast.AST]]:
    """(imported kpireport module, line, inside a function, node) of every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                      ast.Lambda))
            if isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = name.split(".") if is_package else name.split(".")[:-1]
                    parts = parts[:len(parts) - child.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                for alias in child.names:
                    target = f"{base}.{alias.name}"
                    found.append((target if target in MODULES else base, child.lineno,
                                  in_function, child))
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    found.append((alias.name, child.lineno, in_function, child))
            visit(child, inner)

    visit(tree, False)
    return found


IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}


def _rank(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("__main__",):
        return TOP
    return RANK[parts[1]]


def test_every_module_belongs_to_a_stage():
    assert {m.split(".")[1] for m in MODULES if m.count(".")} <= set(RANK) | {"__main__"}


def test_stages_import_only_downwards():
    upward = [f"{name} (line {line}) imports {target}"
              for name, found in IMPORTS.items() for target, line, _, _ in found
              if target.startswith("kpireport.") and target in MODULES
              and _rank(target) > _rank(name)]
    assert upward == []


def test_no_import_cycle_between_files():
    edges: dict[str, set[str]] = defaultdict(set)
    for name, found in IMPORTS.items():
        for target, _, _, _ in found:
            if target in MODULES and target != name:
                edges[name].add(target)
                parts = target.split(".")  # importing a.b.c runs a.b's __init__ first
                for i in range(2, len(parts)):
                    package = ".".join(parts[:i])
                    if package != name and not name.startswith(package + "."):
                        edges[name].add(package)
    cycles = []
    state: dict[str, int] = {}

    def walk(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                walk(nxt, trail + [nxt])
        state[node] = 2

    for module in sorted(MODULES):
        if module not in state:
            walk(module, [module])
    assert cycles == []


def test_an_import_inside_a_function_says_why():
    """Only where it keeps a command's start-up light (a heavy library, or a stage the command
    may never reach), with a comment on its line or the line above saying so."""
    silent = []
    for name, path in MODULES.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        seen = set()
        for _, line, in_function, node in IMPORTS[name]:
            if not in_function or line in seen:
                continue
            seen.add(line)
            end = getattr(node, "end_lineno", line)
            text = " ".join(lines[line - 2:end])
            if "# lazy" not in text:
                silent.append(f"{path.relative_to(PACKAGE.parent)}:{line}")
    assert silent == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_readable(name):
    assert len(MODULES[name].read_text(encoding="utf-8").splitlines()) <= 650


@pytest.mark.parametrize("name", sorted(m for m in MODULES if not m.endswith("__main__")))
def test_every_module_imports(name):
    import importlib

    importlib.import_module(name)
