"""Imports between the packages run one way: profiles may import exporters' public API; exporters import nothing
from profiles/ or app/. Every import counts: at module level, inside functions, and `importlib.import_module("...")`
with a string literal. The one exception is the `exporters` command line (exporters/cli.py), which is a front end
like app/cli.py and shares its option types, error printing and workspace resolution."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLI_FRONT_END = {"exporters/cli.py": ("app.cli_options", "app.workspace")}


def imports(path: Path, root: Path | None = None) -> list[tuple[int, str, list[str]]]:
    """(line, module, imported names) of every import in `path`; relative imports resolved against its package."""
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(path.relative_to(root or ROOT).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            module = f"{base}.{node.module}" if node.level and node.module else (base if node.level else node.module)
            out.append((node.lineno, module or "", [alias.name for alias in node.names]))
        elif (isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name))
              and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            out.append((node.lineno, node.args[0].value, []))
    return out


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _top(module: str) -> str:
    return module.split(".")[0]


def exporters_violations() -> list[str]:
    bad = []
    for path in sources("exporters"):
        rel = path.relative_to(ROOT).as_posix()
        for line, module, _ in imports(path):
            if _top(module) in ("profiles", "app") and module not in CLI_FRONT_END.get(rel, ()):
                bad.append(f"{rel}:{line} imports {module}")
    return bad


def private_violations() -> list[str]:
    bad = []
    for path in sources("profiles"):
        rel = path.relative_to(ROOT).as_posix()
        for line, module, names in imports(path):
            private = [n for n in names if n.startswith("_")]
            parts_private = [p for p in module.split(".")[1:] if p.startswith("_") and p != "__init__"]
            if _top(module) == "exporters" and (private or parts_private):
                bad.append(f"{rel}:{line} imports {module}: {', '.join(private or parts_private)}")
    return bad


def test_exporters_import_nothing_from_profiles_or_app() -> None:
    assert exporters_violations() == []


def test_profiles_use_only_exporters_public_names() -> None:
    assert private_violations() == []


@pytest.mark.parametrize("code, line, module, names", [
    ("from profiles.roofline import try_model_cost\n", 1, "profiles.roofline", ["try_model_cost"]),
    ("def f():\n    from profiles.runtimes import mlx_rt\n", 2, "profiles.runtimes", ["mlx_rt"]),
    ("import importlib\nimportlib.import_module('app.cli')\n", 2, "app.cli", []),
    ("from importlib import import_module\nimport_module('profiles.child')\n", 2, "profiles.child", []),
    ("import app.cli_options as o\n", 1, "app.cli_options", []),
])
def test_the_checker_sees_every_kind_of_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str, line: int,
                                               module: str, names: list[str]) -> None:
    pkg = tmp_path / "exporters" / "lm"
    pkg.mkdir(parents=True)
    (pkg / "bad.py").write_text(code)
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    assert (module, names) in [(m, n) for _, m, n in imports(pkg / "bad.py")]
    assert exporters_violations() == [f"exporters/lm/bad.py:{line} imports {module}"]


def test_relative_imports_resolve_inside_their_package(tmp_path: Path) -> None:
    (tmp_path / "exporters" / "lm").mkdir(parents=True)
    (tmp_path / "exporters" / "lm" / "x.py").write_text("from ..verify import numeric_parity\nfrom . import parity\n")
    assert [m for _, m, _ in imports(tmp_path / "exporters" / "lm" / "x.py", tmp_path)] == ["exporters.verify",
                                                                                          "exporters.lm"]


def test_the_checker_sees_private_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "rt.py").write_text("def f():\n    from exporters.coreml import _ct, feature\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    assert private_violations() == ["profiles/rt.py:2 imports exporters.coreml: _ct"]
