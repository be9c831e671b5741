"""What every command shares: the workspace option, range-checked option callbacks, the one-line error exit,
and the entry point that turns every failure into `error: <problem> -> <fix>` on stderr (no traceback)."""

from __future__ import annotations

import math
import os
import signal
import sys
from typing import Callable, NoReturn

import typer

WorkspaceOpt = typer.Option(None, "--workspace", "-w", envvar="EDGEZOO_WORKSPACE",
                            help="workspace folder (default ./edgezoo-workspace)")


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
        typer.echo("interrupted", err=True)
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
    sys.exit(code if isinstance(code, int) else 0)
