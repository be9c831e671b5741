"""`edgezoo`: the umbrella command. Heavy libraries are imported inside commands, so `--help` is fast."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from app.cli_options import WorkspaceOpt, fail as _fail, run_app
from models.errors import EdgeZooError

app = typer.Typer(help="EdgeZoo: train, compress, export and profile efficient models for edge devices.",
                  no_args_is_help=True, add_completion=False)



@app.command()
def run(workspace: Optional[Path] = WorkspaceOpt,
        recipes: Optional[List[str]] = typer.Option(None, "--recipe", "-r", help="recipes to run (default: all default ones)"),
        formats: Optional[List[str]] = typer.Option(None, "--format", "-f", help="formats (default: torch onnx mlx coreml)"),
        sets: List[str] = typer.Option([], "--set", help="recipe override key=value for every recipe"),
        threads: int = typer.Option(2, "--threads", "-t"),
        as_json: bool = typer.Option(False, "--json", help="print the summary rows as JSON")) -> None:
    """The main job: train the default models, export every format x compression, profile, store, summarise."""
    from app.pipeline import DEFAULT_FORMAT_SPECS, DEFAULT_RECIPES, RunPlan, run as run_pipeline
    from app.summary import print_table
    from app.workspace import Workspace

    fmt_specs = {f: DEFAULT_FORMAT_SPECS[f] for f in (formats or DEFAULT_FORMAT_SPECS)} if formats else dict(DEFAULT_FORMAT_SPECS)
    plan = RunPlan(recipes=tuple(recipes or DEFAULT_RECIPES), format_specs=fmt_specs, threads=threads, overrides=tuple(sets))
    try:
        rows = run_pipeline(Workspace.resolve(workspace), plan, log=lambda s: typer.echo(s, err=True))
    except EdgeZooError as e:
        _fail(e)
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
    else:
        print_table(rows, "edgezoo run")
    if not any(r["status"] == "ok" for r in rows):
        raise typer.Exit(1)


@app.command()
def train(recipe: str = typer.Argument(..., help="recipe YAML path or bundled name (e.g. digits_resnet)"),
          sets: List[str] = typer.Option([], "--set", help="override key=value (dotted keys for model_args)"),
          out: Optional[Path] = typer.Option(None, "--out", "-o", help="checkpoint folder (default: WORKSPACE/zoo/NAME)"),
          workspace: Optional[Path] = WorkspaceOpt) -> None:
    """Train a recipe; writes a checkpoint folder (best) and its last/ sibling."""
    from app.workspace import Workspace
    from trainers.loop import train as train_loop
    from trainers.recipe import load_recipe

    try:
        r = load_recipe(recipe, sets)
        target = out or Workspace.resolve(workspace).zoo / r.name
        metrics = train_loop(r, target)
    except EdgeZooError as e:
        _fail(e)
    typer.echo(json.dumps({"checkpoint": str(target), **metrics}, indent=2))


@app.command()
def export(fmt: str = typer.Argument(..., help="onnx | coreml | mlx | torch"),
           checkpoint: Path = typer.Argument(..., help="checkpoint folder"),
           compress: str = typer.Option("none", "--compress", "-c", help="compression spec, see `exporters --help`"),
           out: Optional[Path] = typer.Option(None, "--out", "-o"),
           workspace: Optional[Path] = WorkspaceOpt,
           force: bool = typer.Option(False, "--force")) -> None:
    """Export a checkpoint (same as the `exporters` command)."""
    from exporters.cli import export_command

    export_command(fmt, checkpoint, compress, out, workspace, force)


@app.command()
def profile(artifacts: List[Path] = typer.Argument(..., help="artifact folders or .onnx/.mlxfn/.mlpackage files"),
            runtime: Optional[str] = typer.Option(None, "--runtime", help="torch | onnxruntime | mlx | coreml | module:Class"),
            threads: int = typer.Option(2, "--threads", "-t"),
            timeout: float = typer.Option(180.0, "--timeout", help="seconds before the measuring child is killed"),
            workspace: Optional[Path] = WorkspaceOpt,
            as_json: bool = typer.Option(False, "--json")) -> None:
    """Profile artifacts, each in a fresh child process; every attempt becomes a record in the store."""
    from app.summary import print_table
    from app.workspace import Workspace
    from profiles.measure import measure

    ws = Workspace.resolve(workspace)
    try:
        store = ws.store()
    except EdgeZooError as e:
        _fail(e)
    rows, failed = [], False
    for path in artifacts:
        try:
            record = measure(path, runtime, threads, timeout=timeout)
        except (EdgeZooError, KeyError) as e:
            typer.echo(f"error: {str(e).strip(chr(34))}", err=True)
            failed = True
            continue
        rid = store.add(record)
        rows.append(store.rows("WHERE id=?", (rid,))[0])
        if record["status"] == "failed":
            typer.echo(f"error: {path}: {record['error_class']}: {record['error_message']}", err=True)
            failed = True
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
    elif rows:
        print_table(rows, "edgezoo profile")
    if failed:
        raise typer.Exit(1)


@app.command()
def results(workspace: Optional[Path] = WorkspaceOpt,
            as_json: bool = typer.Option(False, "--json", help="full records as JSON"),
            status: Optional[str] = typer.Option(None, "--status", help="only ok / failed / unavailable")) -> None:
    """Show what the results store holds."""
    from app.summary import print_table
    from app.workspace import Workspace

    try:
        store = Workspace.resolve(workspace).store()
    except EdgeZooError as e:
        _fail(e)
    where, params = ("WHERE status=?", (status,)) if status else ("", ())
    if as_json:
        typer.echo(json.dumps(list(store.records(where, params)), indent=2, default=str))
    else:
        print_table(store.rows(where, params), f"results in {store.path}")


@app.command()
def dashboard(workspace: Optional[Path] = WorkspaceOpt,
              port: int = typer.Option(8501, "--port"),
              host: str = typer.Option("127.0.0.1", "--host", help="bind address (loopback unless you mean otherwise)")) -> None:
    """Open the Streamlit dashboard over the workspace's results store."""
    from app.dashboard.serve import serve
    from app.workspace import Workspace

    raise typer.Exit(serve(Workspace.resolve(workspace), host=host, port=port))


@app.command()
def report(workspace: Optional[Path] = WorkspaceOpt,
           device: Optional[str] = typer.Option(None, "--device", help="device profile name for predictions (default: host)"),
           out: Optional[List[Path]] = typer.Option(None, "--out", "-o", help="FILE.html and/or FILE.md (default: both in WORKSPACE/reports)")) -> None:
    """Write a self-contained device report (HTML with embedded plotly, and/or Markdown)."""
    from app.workspace import Workspace
    from profiles.report import write_report

    try:
        paths = write_report(Workspace.resolve(workspace), device=device, outs=list(out or []))
    except EdgeZooError as e:
        _fail(e)
    for p in paths:
        typer.echo(str(p))


@app.command()
def reproduce(paper: str = typer.Argument(..., help="paper key, e.g. lcs, subspaces, spin, seedlm, openelm"),
              quick: bool = typer.Option(False, "--quick", help="smaller, faster variant (used by tests)"),
              seeds: Optional[str] = typer.Option(None, "--seeds", help="comma-separated seeds (default: the card's)"),
              workspace: Optional[Path] = WorkspaceOpt,
              as_json: bool = typer.Option(False, "--json")) -> None:
    """Run a paper's small-scale claim; print it beside the paper's numbers and store the verdict."""
    from app.claims_view import print_claim
    from app.workspace import Workspace
    from trainers.claims import reproduce as run_claim

    try:
        store = Workspace.resolve(workspace).store()
        result = run_claim(paper, quick=quick, seeds=[int(s) for s in seeds.split(",")] if seeds else None)
    except EdgeZooError as e:
        _fail(e)
    store.add_claim(result.to_dict())
    typer.echo(json.dumps(result.to_dict(), indent=2, default=str) if as_json else "")
    if not as_json:
        print_claim(result)


@app.command("models")
def list_models() -> None:
    """Registered architectures and their paper cards."""
    import models

    for name in models.names(task=None):
        spec = models.get(name)
        typer.echo(f"{name:<16} {spec.task:<15} {spec.card.title} (arXiv:{spec.card.arxiv}) {spec.card.code}")


def _add_subcommands() -> None:
    """Command groups that live in their own modules (heavy imports stay inside their commands)."""
    from app import cli_demo, cli_lm, cli_specdec, cli_spin, cli_sweep

    app.add_typer(cli_sweep.app, name="sweep")
    app.add_typer(cli_lm.app, name="lm")
    app.add_typer(cli_spin.app, name="spin")
    app.add_typer(cli_specdec.app, name="specdec")
    app.add_typer(cli_demo.app, name="demo")


_add_subcommands()


def main() -> None:
    run_app(app, "edgezoo")
