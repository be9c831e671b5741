"""`edgezoo run`: train the default models, export every format x compression, profile, store, summarise.
Each step reuses what is unchanged: checkpoints by recipe hash, artifacts by content hash, measurements by
(artifact sha, runtime, threads, scenario, device)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from app.workspace import Workspace
from exporters.compression.spec import DEFAULT_SPECS
from models.errors import EdgeZooError

DEFAULT_RECIPES = ("digits_resnet", "digits_mobilenetv2", "digits_convmixer")
DEFAULT_FORMAT_SPECS: dict[str, tuple[str, ...]] = {
    "torch": ("none",),
    "onnx": DEFAULT_SPECS,
    "mlx": DEFAULT_SPECS,
    "coreml": (*DEFAULT_SPECS, "palette4"),
}
REUSABLE_STATUSES = ("ok", "unavailable")

Log = Callable[[str], None]


@dataclass
class RunPlan:
    recipes: tuple[str, ...] = DEFAULT_RECIPES
    format_specs: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_FORMAT_SPECS))
    threads: int = 2
    overrides: tuple[str, ...] = ()  # --set key=value applied to every recipe
    scenario: Any = None             # profiles.measure.Scenario; None = its defaults


def check_plan(plan: RunPlan) -> None:
    """Every name and number in a plan, checked before the store is opened or anything is trained."""
    from exporters.compression.spec import parse_spec
    from trainers.recipe import load_recipe

    unknown = sorted(set(plan.format_specs) - set(DEFAULT_FORMAT_SPECS))
    if unknown:
        raise EdgeZooError(f"unknown format {', '.join(map(repr, unknown))}", f"use any of: {', '.join(DEFAULT_FORMAT_SPECS)}")
    for fmt, specs in plan.format_specs.items():
        for spec in specs:
            parse_spec(spec, fmt)
    if not isinstance(plan.threads, int) or isinstance(plan.threads, bool) or plan.threads < 1:
        raise EdgeZooError(f"threads {plan.threads!r} is not an integer >= 1", "pass e.g. --threads 2")
    if not plan.recipes:
        raise EdgeZooError("the plan has no recipes", f"pass --recipe, e.g. {DEFAULT_RECIPES[0]}")
    names: dict[str, str] = {}
    for recipe_name in plan.recipes:
        name = load_recipe(recipe_name, list(plan.overrides)).name
        if name in names:
            raise EdgeZooError(f"recipes {names[name]} and {recipe_name} both name the checkpoint {name!r}",
                               "give each recipe its own name (do not --set name= for several recipes)")
        names[name] = recipe_name


def train_or_reuse(recipe_name: str, ws: Workspace, overrides: list[str], log: Log) -> Path:
    from models.checkpoint import read_card
    from trainers.loop import train
    from trainers.recipe import load_recipe

    recipe = load_recipe(recipe_name, overrides)
    out = ws.zoo / recipe.name
    try:
        card = read_card(out)
        if card.get("recipe_hash") == recipe.hash() and card.get("metrics"):
            log(f"reuse   {recipe.name}: checkpoint up to date (recipe {recipe.hash()})")
            return out
    except EdgeZooError:
        pass
    log(f"train   {recipe.name}")
    metrics = train(recipe, out)
    log(f"        test accuracy {metrics['test_accuracy']:.3f} in {metrics['train_seconds']:.1f} s")
    return out


def failure_record(stage: str, model: str, fmt: str, spec: str, err: Exception) -> dict[str, Any]:
    return {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "model": model, "runtime": None,
            "artifact": {"format": fmt, "compression": spec}, "status": "failed",
            "error_class": err.__class__.__name__, "error_message": f"{stage}: {err}"}


def profile_or_reuse(artifact, store, threads: int, scenario: Any = None) -> dict[str, Any]:
    from profiles.launcher import keep_interrupted
    from profiles.measure import Scenario, measure, request_key
    from profiles.runtimes import DEFAULT_RUNTIME

    runtime = DEFAULT_RUNTIME[artifact.manifest["format"]]
    scenario = scenario or Scenario()
    key = request_key(artifact, runtime, threads, scenario, {})
    for status in REUSABLE_STATUSES:
        rows = store.rows("WHERE cache_key=? AND status=?", (key, status))
        if rows:
            return rows[-1]
    with keep_interrupted(store):
        record = measure(artifact, runtime, threads, scenario)
    rid = store.add(record)
    return store.rows("WHERE id=?", (rid,))[0]


def run(ws: Workspace, plan: RunPlan | None = None, log: Log = print) -> list[dict[str, Any]]:
    """The main job. Returns the summary rows (one per artifact x runtime, failures included)."""
    from exporters.artifact import export_checkpoint

    plan = plan or RunPlan()
    check_plan(plan)
    store = ws.store()
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for recipe_name in plan.recipes:
        ckpt = train_or_reuse(recipe_name, ws, list(plan.overrides), log)
        model = json.loads((ckpt / "card.json").read_text())["model"]
        for fmt, specs in plan.format_specs.items():
            for spec in specs:
                t_export = time.perf_counter()
                try:
                    artifact = export_checkpoint(ckpt, fmt, spec, workspace=ws.root)
                except EdgeZooError as e:
                    log(f"failed  export {model} {fmt} {spec}: {e}")
                    rid = store.add(failure_record("export", model, fmt, spec, e))
                    rows.append(store.rows("WHERE id=?", (rid,))[0])
                    continue
                t_profile = time.perf_counter()
                row = profile_or_reuse(artifact, store, plan.threads, plan.scenario)
                log(f"{row['status']:<7} {model} {fmt} {artifact.manifest['compression_name']}{_p50(row)}"
                    f"  (export {t_profile - t_export:.1f} s, profile {time.perf_counter() - t_profile:.1f} s)")
                rows.append(row)
    log(f"done in {time.perf_counter() - t0:.1f} s; store: {ws.store_path}")
    store.close()
    return rows


def _p50(row: dict[str, Any]) -> str:
    return "" if row.get("p50_ms") is None else f"  p50 {row['p50_ms']:.3f} ms"
