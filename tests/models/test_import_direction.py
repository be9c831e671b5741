"""models/ is the bottom layer: nothing under it imports exporters, profiles, app or trainers (not even lazily
inside a function), so the architectures and shared blocks can be used without the rest of EdgeZoo."""

from __future__ import annotations

import ast
from pathlib import Path

import models

FORBIDDEN = {"exporters", "profiles", "app", "trainers"}
MODELS = Path(models.__file__).parent


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            out.append((node.lineno, node.args[0].value))
    return out


def test_models_import_no_higher_layer() -> None:
    files = sorted(MODELS.rglob("*.py"))
    assert len(files) > 5
    bad = [f"{f.relative_to(MODELS.parent)}:{line} imports {name}"
           for f in files for line, name in _imported(ast.parse(f.read_text(), str(f)))
           if name.split(".")[0] in FORBIDDEN]
    assert not bad, "\n".join(bad)


def test_the_check_sees_lazy_imports() -> None:
    src = "def f():\n    from exporters.compression import rtn_\n    import app.cli\n    importlib.import_module('trainers.x')\n"
    assert [n for _, n in _imported(ast.parse(src))] == ["exporters.compression", "app.cli", "trainers.x"]
