"""`edgezoo`: the umbrella command. Heavy libraries are imported inside commands, so `--help` is fast."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import List, Optional

import typer

from app.cli_agent import AddressOpt, OnOpt
from app.cli_options import (fail as _fail, finite_float, input_specs, int_at_least, int_in_range, int_list,
                             one_of, output_path, run_app, runtime_options, WorkspaceOpt)
from models.errors import EdgeZooError

app = typer.Typer(help="EdgeZoo: train, compress, export and profile efficient models for edge devices.",
                  no_args_is_help=True, add_completion=False)

STATUSES = ("ok", "failed", "unavailable", "interrupted")
SCALES = ("small", "deploy")  # edgezoo run --scale
ThreadsOpt = typer.Option(2, "--threads", "-t", callback=int_at_least(1, 2), max=256,
                          help="threads the runtime may use (1-256)")


@app.command()
def run(workspace: Optional[Path] = WorkspaceOpt,
        papers: Optional[str] = typer.Option(None, "--papers", "-p",
                                             help="comma-separated paper plug-ins (default: every paper and the baselines)"),
        recipes: Optional[List[str]] = typer.Option(None, "--recipe", "-r",
                                                    help="plain classifier recipes instead (exported like the baselines)"),
        formats: Optional[List[str]] = typer.Option(None, "--format", "-f", help="only these formats (torch onnx mlx coreml)"),
        sets: List[str] = typer.Option([], "--set", help="recipe override key=value for every recipe"),
        threads: int = ThreadsOpt,
        on: Optional[str] = OnOpt,
        address: str = AddressOpt,
        scale: str = typer.Option("small", "--scale", callback=one_of(SCALES),
                                  help="small: train at small scale (default); deploy: every deploy() architecture at "
                                       "its published size, seeded weights, quality not measured"),
        models: Optional[str] = typer.Option(None, "--models", "-m",
                                             help="--scale deploy: comma-separated architectures (default: all)"),
        as_json: bool = typer.Option(False, "--json", help="print the summary rows as JSON")) -> None:
    """The main job: train every paper's deployable model at small scale, export it in every format x compression
    that applies, profile each artifact, store and summarise. Unchanged steps are reused."""
    from app.cli_agent import names
    from app.pipeline import RunPlan, run as run_pipeline
    from app.summary import print_table
    from app.workspace import Workspace

    keys = tuple(k.strip() for k in papers.split(",") if k.strip()) if papers is not None else None
    plan = RunPlan(papers=keys, recipes=tuple(recipes or ()), formats=tuple(formats) if formats else None,
                   threads=threads, overrides=tuple(sets), devices=tuple(names(on)), address=address)
    try:
        _check_scale(scale, recipes, sets, on, models)
        log = lambda s: typer.echo(s, err=True)  # noqa: E731
        if scale == "deploy":
            from app import deploy

            picked = tuple(m.strip() for m in models.split(",") if m.strip()) if models is not None else None
            rows = deploy.run(Workspace.resolve(workspace), plan, picked, log=log)
        else:
            rows = run_pipeline(Workspace.resolve(workspace), plan, log=log)
    except EdgeZooError as e:
        _fail(e)
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
    else:
        print_table(rows, "edgezoo run")
    if not any(r["status"] == "ok" for r in rows):
        raise typer.Exit(1)


def _check_scale(scale: str, recipes: Optional[List[str]], sets: List[str], on: Optional[str],
                 models: Optional[str]) -> None:
    """Options that belong to one scale only are refused at the other, naming the one that does not fit."""
    if scale == "deploy":
        for flag, given in (("--recipe", recipes), ("--set", sets), ("--on", on)):
            if given:
                raise EdgeZooError(f"{flag} does not apply to --scale deploy (nothing is trained; this machine "
                                   "profiles)", f"drop {flag}, or run without --scale deploy")
    elif models is not None:
        raise EdgeZooError("--models applies to --scale deploy only", "add --scale deploy, or use --papers")


def _train_target(out: Optional[Path], workspace: Optional[Path], name: str) -> Path:
    """Where `train` writes: --out (new, empty or an existing checkpoint folder), else WORKSPACE/zoo/NAME."""
    from app.workspace import Workspace
    from models.checkpoint import CARD

    if out is None:
        return Workspace.resolve(workspace).checkpoint_dir(name)
    if out.is_dir() and any(out.iterdir()) and not (out / CARD).exists():
        raise EdgeZooError(f"--out {out} is a folder that holds files but no checkpoint",
                           "pass a new or empty folder, or a checkpoint folder to overwrite")
    return out


@app.command()
def train(recipe: str = typer.Argument(..., help="recipe YAML path or bundled name (e.g. digits_resnet, lcs_l, line)"),
          sets: List[str] = typer.Option([], "--set", help="override key=value (dotted keys for model_args)"),
          out: Optional[Path] = typer.Option(None, "--out", "-o", callback=output_path("folder"),
                                             help="checkpoint folder (default: WORKSPACE/zoo/NAME)"),
          workspace: Optional[Path] = WorkspaceOpt) -> None:
    """Train any paper's recipe (the plug-in whose configs/ holds it trains it) or a plain classifier recipe;
    writes a checkpoint folder."""
    from trainers.papers import recipe_trainer
    from trainers.recipe import read_recipe_yaml

    try:
        path, trainer, _ = recipe_trainer(recipe)
        trainer(path, Path("unused"), list(sets), check_only=True)  # every key, type and range before any work
        target = _train_target(out, workspace, read_recipe_yaml(path, list(sets))[0]["name"])
        metrics = trainer(path, target, list(sets))
    except EdgeZooError as e:
        _fail(e)
    typer.echo(json.dumps({"checkpoint": str(target), **metrics}, indent=2))


@app.command()
def export(fmt: str = typer.Argument(..., help="onnx | coreml | mlx | torch"),
           checkpoint: Path = typer.Argument(..., help="checkpoint folder"),
           compress: str = typer.Option("none", "--compress", "-c", help="compression spec, see `exporters --help`"),
           out: Optional[Path] = typer.Option(None, "--out", "-o", callback=output_path("folder")),
           workspace: Optional[Path] = WorkspaceOpt,
           force: bool = typer.Option(False, "--force")) -> None:
    """Export a checkpoint (same as the `exporters` command)."""
    from exporters.cli import export_command

    export_command(fmt, checkpoint, compress, out, workspace, force)


def _check_runtime(runtime: Optional[str]) -> None:
    from profiles.runtimes import RUNTIMES

    if runtime is not None and runtime not in RUNTIMES and not re.fullmatch(r"[\w.]+:\w+", runtime):
        raise EdgeZooError(f"unknown runtime {runtime!r}", f"use one of: {', '.join(RUNTIMES)}, or package.module:Class")


@app.command()
def profile(artifacts: List[Path] = typer.Argument(..., help="artifact folders or .onnx/.mlxfn/.mlpackage files"),
            runtime: Optional[str] = typer.Option(None, "--runtime", help="torch | onnxruntime | mlx | coreml | module:Class"),
            threads: int = ThreadsOpt,
            timeout: float = typer.Option(180.0, "--timeout", callback=finite_float(0.0, strict_low=True, example=180),
                                          help="seconds before the measuring child is killed"),
            inputs: Optional[List[str]] = typer.Option(None, "--input", callback=input_specs,
                                                       help="NAME=SHAPE:DTYPE (e.g. x=1x64:float32), repeatable: the "
                                                            "inputs of a foreign model file whose inputs are dynamic"),
            option: Optional[List[str]] = typer.Option(
                None, "--option", callback=runtime_options,
                help="KEY=VALUE[,VALUE...], repeatable: runtime options, one record per combination (coreml "
                     "compute_units=ALL,CPU_ONLY,CPU_AND_GPU,CPU_AND_NE; mlx device=gpu,cpu; torch device=cpu,mps)"),
            workspace: Optional[Path] = WorkspaceOpt,
            on: Optional[str] = OnOpt,
            address: str = AddressOpt,
            as_json: bool = typer.Option(False, "--json")) -> None:
    """Profile artifacts, each in a fresh child process (on fleet devices with --on); every measured attempt becomes
    a record in the store.
    A path that is not an artifact, an unknown runtime or a runtime option it does not have is refused before
    anything is measured or stored."""
    from app.summary import print_table
    from app.workspace import Workspace
    from exporters.artifact import load_artifact
    from profiles.launcher import keep_interrupted
    from profiles.measure import check_inputs, measure
    from profiles.runtimes import DEFAULT_RUNTIME, check_options

    rows, failed, loaded = [], False, []
    try:
        _check_runtime(runtime)
    except EdgeZooError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    for path in artifacts:
        try:
            loaded.append(load_artifact(path))
        except EdgeZooError as e:
            typer.echo(f"error: {e}", err=True)
            failed = True
    try:
        for artifact, options in itertools.product(loaded, option):
            check_options(runtime or DEFAULT_RUNTIME.get(artifact.manifest.get("format", ""), "onnxruntime"), options)
            check_inputs(artifact, inputs)  # a wrong input (image) size is refused before anything is measured
        store = Workspace.resolve(workspace).store() if loaded else None
    except EdgeZooError as e:
        _fail(e)
    if on and loaded:  # on fleet devices: the records come back here and only this process stores them
        from app.cli_agent import profile_on

        for options in option:
            got, failed_on = profile_on(store, loaded, on, address, runtime, threads, timeout, inputs, options)
            rows, failed = rows + got, failed or failed_on
        loaded = []
    for artifact, options in itertools.product(loaded, option):
        with keep_interrupted(store):  # Ctrl-C / SIGTERM: the child is stopped and an 'interrupted' record kept
            record = measure(artifact, runtime, threads, options=options, timeout=timeout, inputs=inputs)
        rid = store.add(record)
        rows.append(store.rows("WHERE id=?", (rid,))[0])
        if record["status"] == "failed":
            typer.echo(f"error: {artifact.path}: {record['error_class']}: {record['error_message']}", err=True)
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
            status: Optional[str] = typer.Option(None, "--status", callback=one_of(STATUSES),
                                                 help=f"only records with this status: {' / '.join(STATUSES)}")) -> None:
    """Show what the results store holds."""
    from app.summary import print_table
    from app.workspace import Workspace
    from profiles import query

    try:
        store = Workspace.resolve(workspace).store()
    except EdgeZooError as e:
        _fail(e)
    where, params = ("WHERE status=?", (status,)) if status else ("", ())
    if as_json:
        typer.echo(json.dumps(query.records(store, where, params), indent=2, default=str))
    else:
        print_table(query.summary_rows(store, where, params), f"results in {store.path}")


def _host(value: str) -> str:
    if not value.strip() or any(c.isspace() for c in value):
        raise typer.BadParameter(f"{value!r} is not a host name or address; pass e.g. 127.0.0.1")
    return value


def _check_free(host: str, port: int) -> None:
    """Refuse a host:port the server could not bind, before Streamlit starts (it would print a traceback)."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as s:
            s.bind(address)
    except OSError as e:
        raise EdgeZooError(f"cannot serve the dashboard on {host}:{port} ({e.strerror or e})",
                           "pass another --port or --host, or stop what uses it") from None


@app.command()
def dashboard(workspace: Optional[Path] = WorkspaceOpt,
              port: int = typer.Option(8501, "--port", callback=int_in_range(1, 65535, 8501)),
              host: str = typer.Option("127.0.0.1", "--host", callback=_host,
                                       help="bind address (loopback unless you mean otherwise)")) -> None:
    """Open the Streamlit dashboard over the workspace's results store."""
    from app.dashboard.serve import serve
    from app.workspace import Workspace

    try:
        _check_free(host, port)
    except EdgeZooError as e:
        _fail(e)
    raise typer.Exit(serve(Workspace.resolve(workspace), host=host, port=port))


@app.command()
def report(workspace: Optional[Path] = WorkspaceOpt,
           device: Optional[str] = typer.Option(None, "--device", help="device profile name for predictions (default: host)"),
           out: Optional[List[Path]] = typer.Option(None, "--out", "-o", callback=output_path("file"),
                                                    help="FILE.html and/or FILE.md (default: both in WORKSPACE/reports)")) -> None:
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
def reproduce(paper: str = typer.Argument(..., help="paper key (`edgezoo models` lists the paper plug-ins)"),
              quick: bool = typer.Option(False, "--quick", help="smaller, faster variant (used by tests)"),
              seeds: Optional[str] = typer.Option(None, "--seeds", callback=int_list(0),
                                                  help="comma-separated distinct seeds >= 0 (default: the card's)"),
              workspace: Optional[Path] = WorkspaceOpt,
              as_json: bool = typer.Option(False, "--json")) -> None:
    """Run a paper's small-scale claim; print it beside the paper's numbers and store the verdict."""
    from app.claims_view import print_claim
    from app.workspace import Workspace
    from trainers.claims import reproduce as run_claim, resolve

    try:
        resolve(paper)  # an unknown paper fails before the store is opened
        store = Workspace.resolve(workspace).store()
        result = run_claim(paper, quick=quick, seeds=seeds)
    except EdgeZooError as e:
        _fail(e)
    store.add_claim(result.to_dict())
    typer.echo(json.dumps(result.to_dict(), indent=2, default=str) if as_json else "")
    if not as_json:
        print_claim(result)


@app.command("models")
def list_models() -> None:
    """Paper plug-ins (what `edgezoo run` and `edgezoo reproduce` cover) and the registered architectures."""
    import models
    from trainers.papers import papers

    typer.echo("papers (edgezoo run --papers KEY; edgezoo reproduce KEY):")
    for p in papers():
        deploys = "; ".join(f"{d.recipe.rsplit('/', 1)[-1]} -> {', '.join(d.exports)}" for d in p.deployables)
        claim = "claim" if p.claim else "no claim"
        typer.echo(f"  {p.key:<12} {p.title} (arXiv:{p.arxiv})\n  {'':<12} models {', '.join(p.models) or '-'}; "
                   f"{claim}; main job: {deploys or '-'}")
    typer.echo("architectures:")
    for name in models.names(task=None):
        spec = models.get(name)
        typer.echo(f"  {name:<16} {spec.task:<15} {spec.card.title} (arXiv:{spec.card.arxiv}) {spec.card.code}")


def _add_subcommands() -> None:
    """Command groups that live in their own modules (heavy imports stay inside their commands)."""
    from app import cli_agent, cli_bytes, cli_demo, cli_lm, cli_specdec, cli_spin, cli_sweep

    app.add_typer(cli_sweep.app, name="sweep")
    app.add_typer(cli_lm.app, name="lm")
    app.add_typer(cli_spin.app, name="spin")
    app.add_typer(cli_specdec.app, name="specdec")
    app.add_typer(cli_demo.app, name="demo")
    app.command("head")(cli_agent.head)
    app.command("agent")(cli_agent.agent)
    app.command("devices")(cli_agent.devices)
    app.command("classify-bytes")(cli_bytes.classify_bytes)


_add_subcommands()


def main() -> None:
    run_app(app, "edgezoo")
