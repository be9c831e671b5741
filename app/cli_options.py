"""What every command shares: the workspace option, range-checked option callbacks, the one-line error exit,
and the entry point that turns every failure into `error: <problem> -> <fix>` on stderr (no traceback)."""

from __future__ import annotations

import math
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any, Callable, NoReturn

import typer

def fail(err: Exception) -> NoReturn:
    """Print `error: <problem -> fix>` to stderr and exit 2."""
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(2)


def int_at_least(low: int, example: int | None = None) -> Callable[[int | None], int | None]:
    """Option callback: an integer >= low (None passes: the option's own default applies)."""
    def check(value: int | None) -> int | None:
        if value is not None and value < low:
            raise typer.BadParameter(f"{value} is below {low}; pass an integer >= {low}, e.g. {example or low}")
        return value
    return check


def finite_float(low: float | None = None, high: float | None = None, *, strict_low: bool = False,
                 example: float | None = None) -> Callable[[float | None], float | None]:
    """Option callback: a finite float in [low, high] (or (low, high] with strict_low)."""
    def check(value: float | None) -> float | None:
        if value is None:
            return value
        bad = not math.isfinite(value) or (low is not None and (value <= low if strict_low else value < low)) \
            or (high is not None and value > high)
        if bad:
            lo = "" if low is None else (f"> {low}" if strict_low else f">= {low}")
            hi = "" if high is None else f"<= {high}"
            rng = " and ".join(s for s in (lo, hi) if s) or "finite"
            raise typer.BadParameter(f"{value} is not a finite number {rng}; pass e.g. {example if example is not None else low}")
        return value
    return check


def int_in_range(low: int, high: int, example: int | None = None) -> Callable[[int | None], int | None]:
    """Option callback: an integer in [low, high]."""
    at_least = int_at_least(low, example)

    def check(value: int | None) -> int | None:
        if at_least(value) is not None and value > high:
            raise typer.BadParameter(f"{value} is above {high}; pass an integer from {low} to {high}, "
                                     f"e.g. {example or low}")
        return value
    return check


def one_of(choices: tuple[str, ...]) -> Callable[[str | None], str | None]:
    """Option callback: one of `choices` (None passes)."""
    def check(value: str | None) -> str | None:
        if value is not None and value not in choices:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(choices)}; pass one of them")
        return value
    return check


def int_list(low: int = 0, example: str = "0,1,2") -> Callable[[str | None], list[int] | None]:
    """Option callback: comma-separated distinct integers >= low, e.g. `--seeds 0,1,2` (None passes)."""
    def check(value: str | None) -> list[int] | None:
        if value is None:
            return None
        items = [v.strip() for v in value.split(",")]
        if not all(re.fullmatch(r"-?[0-9]+", v) for v in items):
            raise typer.BadParameter(f"{value!r} is not a comma-separated list of integers; pass e.g. {example}")
        numbers = [int(v) for v in items]
        if min(numbers) < low or len(set(numbers)) != len(numbers):
            raise typer.BadParameter(f"{value!r} has a repeated integer or one below {low}; "
                                     f"pass distinct integers >= {low}, e.g. {example}")
        return numbers
    return check


def input_specs(values: list[str] | None) -> list[dict[str, Any]] | None:
    """Option callback for repeatable `--input NAME=SHAPE[:DTYPE]` (e.g. `x=1x64:float32`, dtype float32 when
    left out): [{"name", "shape", "dtype"}], the input specs of a model whose inputs cannot be read from it."""
    if not values:
        return None
    from profiles.child import _DTYPES as DTYPES

    example = "pass NAME=SHAPE:DTYPE, e.g. --input x=1x64:float32"
    specs: list[dict[str, Any]] = []
    for text in values or []:
        name, sep, rest = text.partition("=")
        shape_text, _, dtype = rest.rpartition(":") if ":" in rest else (rest, "", "float32")
        dims = shape_text.split("x")
        if not sep or not name.strip() or not all(re.fullmatch(r"0*[1-9][0-9]*", d) for d in dims):
            raise typer.BadParameter(f"{text!r} is not NAME=SHAPE:DTYPE with positive integer dims; {example}")
        if dtype not in DTYPES:
            raise typer.BadParameter(f"dtype {dtype!r} in {text!r} is unknown; use one of {', '.join(DTYPES)}")
        if name in {s["name"] for s in specs}:
            raise typer.BadParameter(f"input {name!r} is given twice; give each input once")
        specs.append({"name": name, "shape": [int(d) for d in dims], "dtype": dtype})
    return specs or None


def runtime_options(values: list[str] | None) -> list[dict[str, str]]:
    """Option callback for repeatable `--option KEY=VALUE[,VALUE...]` (e.g. `compute_units=ALL,CPU_AND_NE`): every
    combination of the values, one measurement each (scenarios of one artifact); [{}] when none is given. Which keys
    and values a runtime accepts is checked against the runtime itself (profiles.runtimes.check_options)."""
    import itertools

    chosen: dict[str, list[str]] = {}
    for text in values or []:
        key, sep, rest = text.partition("=")
        picks = [v.strip() for v in rest.split(",")]
        if not sep or not key.strip() or not all(picks):
            raise typer.BadParameter(f"{text!r} is not KEY=VALUE[,VALUE...]; e.g. --option compute_units=ALL,CPU_ONLY")
        if key.strip() in chosen:
            raise typer.BadParameter(f"option {key.strip()!r} is given twice; list its values once, comma-separated")
        chosen[key.strip()] = list(dict.fromkeys(picks))
    return [dict(zip(chosen, combo)) for combo in itertools.product(*chosen.values())]


def _file_above(path: Path) -> Path | None:
    """The first existing ancestor of `path` that is not a folder (then `path` cannot be created), if any."""
    for parent in path.absolute().parents:
        if parent.exists() or parent.is_symlink():
            return None if parent.is_dir() else parent
    return None


def output_path(kind: str) -> Callable[[Any], Any]:
    """Option callback for paths written to: `kind` "folder" refuses an existing file, "file" an existing folder;
    both refuse a path under a file and a broken or looping symlink. Takes a path or a list of paths."""
    def check_one(path: Path) -> None:
        if path.is_symlink() and not path.exists():
            raise typer.BadParameter(f"{path} is a broken symlink or a symlink loop; pass a plain {kind} path")
        if kind == "folder" and path.exists() and not path.is_dir():
            raise typer.BadParameter(f"{path} is a file, not a folder; pass a new or existing folder")
        if kind == "file" and path.is_dir():
            raise typer.BadParameter(f"{path} is a folder; pass a file path inside it, e.g. {path / 'report.html'}")
        blocker = _file_above(path)
        if blocker is not None:
            raise typer.BadParameter(f"{blocker} is a file, so {path} cannot be created; pass a path under a folder")

    def check(value: Any) -> Any:
        for path in value if isinstance(value, (list, tuple)) else [value] if value is not None else []:
            check_one(Path(path))
        return value
    return check


def check_workspace(value: Path | None) -> Path | None:
    """Callback of WorkspaceOpt: a workspace that is a file, a symlink loop or under a file fails before any work."""
    from app.workspace import Workspace, WorkspaceError

    try:
        root = Workspace.resolve(value).root
    except WorkspaceError as e:
        raise typer.BadParameter(str(e)) from None
    blocker = _file_above(root)
    if blocker is not None:
        raise typer.BadParameter(f"workspace {value or root} lies under {blocker}, which is a file -> "
                                 "pass --workspace a folder path (it is created if missing)")
    return value


WorkspaceOpt = typer.Option(None, "--workspace", "-w", envvar="EDGEZOO_WORKSPACE", callback=check_workspace,
                            help="workspace folder (default ./edgezoo-workspace)")


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C: measuring children are stopped, temp dirs removed, the interruption recorded."""
    raise KeyboardInterrupt("SIGTERM")


def run_app(app: typer.Typer, prog: str) -> NoReturn:
    """Run a Typer app so that every failure is one line on stderr and a non-zero exit, never a traceback.

    Usage errors exit 2; EdgeZooError exits 2; an interrupt exits 130; anything unexpected exits 1 and says it is a
    bug (EDGEZOO_DEBUG=1 re-raises it with its traceback)."""
    from typer._click.exceptions import ClickException  # typer vendors click; its errors are not click's

    from models.errors import EdgeZooError

    command = typer.main.get_command(app)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        code = command.main(args=sys.argv[1:], prog_name=prog, standalone_mode=False)
    except typer.Exit as e:
        code = e.exit_code
    except ClickException as e:
        ctx = getattr(e, "ctx", None)
        where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        if e.format_message():  # no_args_is_help has printed the help already
            typer.echo(f"error: {e.format_message()}{where}", err=True)
        code = e.exit_code
    except (typer.Abort, KeyboardInterrupt):
        code = 130
    except EdgeZooError as e:
        typer.echo(f"error: {e}", err=True)
        code = 2
    except Exception as e:  # a bug: still one line, and the way to get the traceback
        if os.environ.get("EDGEZOO_DEBUG"):
            raise
        first = (str(e).strip().splitlines() or [""])[0][:300]
        typer.echo(f"error: unexpected {e.__class__.__name__}: {first} -> this is a bug in EdgeZoo; rerun with "
                   "EDGEZOO_DEBUG=1 to see the traceback and report it", err=True)
        code = 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    if code == 130:  # typer turns KeyboardInterrupt (Ctrl-C, or SIGTERM above) into a silent exit 130
        typer.echo("interrupted: stopped by Ctrl-C or SIGTERM", err=True)
    sys.exit(code if isinstance(code, int) else 0)
