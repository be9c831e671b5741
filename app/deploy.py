"""`edgezoo run --scale deploy`: every registered architecture whose Args dataclass has a `deploy()` classmethod
(its paper's published deployable size: MobileNetV2-1.0 and ResNet-18 at 224x224, SPIN's ConvMixer-768/32,
ViT-Ti, OpenELM-270M, ...) built once, exported in every format x compression that applies, profiled and stored
through the main job's own export, profile and record code (app/pipeline.py).

Weights come from the newest small checkpoint of the same architecture in the workspace wherever a tensor's name
and shape match, seeded random weights otherwise (the card says how many came from where), so quality is "not
measured": the artifact's eval data are seeded random inputs, for parity only. Every artifact manifest and record
carries scale="deploy" (profiles.query.scale), so tables and the dashboard keep the two scales apart.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from app.pipeline import SCENARIO_RUNNERS, Job, Log, RunPlan, check_plan
from app.workspace import Workspace
from models.errors import EdgeZooError

SCALE = "deploy"
SEED = 0
# What deploy-scale artifacts are exported with, kept per format to what that format supports for the task.
# Pruning is left out: its fine-tuning needs training data at the model's input size, which no deploy model has.
SPECS = {"classification": ("none", "fp16", "int8", "int8-static", "int4", "palette4"),
         "lm": ("none", "int8", "int4")}
LM_SETTINGS = {"prompt_len": 32, "new_tokens": 16, "eval_windows": 0, "repeats": 2}


def scenario() -> Any:
    """Fewer, longer calls than the small models' loop: a 224x224 ConvMixer takes a good fraction of a second."""
    from profiles.measure import Scenario

    return Scenario(warmup=2, min_iters=10, min_seconds=1.0, max_seconds=15.0)


def has_deploy(name: str) -> bool:
    from models.registry import get

    return callable(getattr(get(name).args_cls, "deploy", None))


def owner(name: str, found: dict[str, Any]) -> str | None:
    """The paper a model's records are filed under: its registry card's key, else the first plug-in listing it."""
    from models.registry import get

    key = get(name).card.key
    if key in found:
        return key
    return next((k for k, p in sorted(found.items(), key=lambda kv: (not kv[1].baseline, kv[0]))
                 if name in p.models), None)


def select(papers: tuple[str, ...] | None, models: tuple[str, ...] | None) -> list[tuple[str, str | None]]:
    """(model, paper) for every deployable architecture the papers (default: all) and models (default: all) name."""
    from models.registry import names
    from trainers.papers import discover

    found = discover()
    unknown = sorted(set(papers or ()) - set(found))
    if unknown:
        raise EdgeZooError(f"no paper plug-in {', '.join(map(repr, unknown))}", f"use any of: {', '.join(found)}")
    every = [n for n in names(None) if has_deploy(n)]
    unknown = sorted(set(models or ()) - set(every))
    if unknown:
        raise EdgeZooError(f"no deployment-scale model {', '.join(map(repr, unknown))}",
                           f"use any of: {', '.join(every)} (a model needs a deploy() on its Args dataclass)")
    chosen = [n for n in every if models is None or n in models]
    if papers is not None:
        listed = {m for k in papers for m in found[k].models}
        chosen = [n for n in chosen if n in listed or owner(n, found) in papers]
    return [(n, owner(n, found)) for n in chosen]


def exports(task: str, formats: tuple[str, ...] | None) -> dict[str, tuple[str, ...]]:
    """Format -> the deploy specs it supports for `task`, derived from the exporter registry."""
    from exporters import FORMATS
    from exporters.compression.spec import SUPPORTED, parse_spec

    out = {}
    for fmt in FORMATS:
        if formats is None or fmt in formats:
            specs = tuple(s for s in SPECS[task] if parse_spec(s, task=task).method in SUPPORTED[(fmt, task)])
            if specs:
                out[fmt] = specs
    return out


def small_checkpoint(ws: Workspace, name: str) -> Path | None:
    """The newest small-scale checkpoint of architecture `name` in the workspace's zoo, if any."""
    from models.checkpoint import read_card

    best: tuple[float, Path] | None = None
    for card_path in ws.zoo.glob("*/card.json") if ws.zoo.is_dir() else ():
        try:
            card = read_card(card_path.parent)
        except EdgeZooError:
            continue
        if card["model"] == name and card.get("scale") != SCALE:
            stamp = card_path.stat().st_mtime
            best = max(best or (stamp, card_path.parent), (stamp, card_path.parent))
    return best[1] if best else None


def transfer(model: Any, source: Path | None) -> dict[str, Any]:
    """Copy every tensor of `source` whose name and shape match into `model`; say how many came from where."""
    from safetensors.torch import load_file

    from models.checkpoint import WEIGHTS

    state = model.state_dict()
    theirs = load_file(str(source / WEIGHTS)) if source is not None else {}
    same = {k: v for k, v in theirs.items() if k in state and state[k].shape == v.shape}
    model.load_state_dict(same, strict=False)
    return {"from": str(source) if source else None, "tensors_copied": len(same), "tensors": len(state),
            "values_copied": sum(v.numel() for v in same.values()),
            "values": sum(v.numel() for v in state.values()), "rest": f"seeded random (torch seed {SEED})"}


def deploy_checkpoint(ws: Workspace, name: str, log: Log) -> Path:
    """WORKSPACE/zoo/NAME-deploy: the architecture at its deploy() size, reused while its inputs are unchanged."""
    import dataclasses

    import torch

    from models import checkpoint
    from models.registry import build, get

    args = get(name).args_cls.deploy()
    out = ws.checkpoint_dir(f"{name}-{SCALE}")
    source = small_checkpoint(ws, name)
    inputs = {"args": dataclasses.asdict(args), "seed": SEED,
              "source": checkpoint.checkpoint_hash(source) if source else None}
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]
    try:
        if checkpoint.read_card(out).get("deploy_key") == key:
            log(f"reuse   {out.name}: deployment-scale checkpoint up to date")
            return out
    except EdgeZooError:
        pass
    t0 = time.perf_counter()
    torch.manual_seed(SEED)
    model = build(name, args)
    weights = transfer(model, source)
    checkpoint.save(model, out, {"scale": SCALE, "deploy_key": key, "weights": weights,
                                 "metrics": {"quality": "not measured (seeded or partly transferred weights)"}})
    log(f"built   {out.name}: {weights['values'] / 1e6:.1f}M parameters, {weights['tensors_copied']} of "
        f"{weights['tensors']} tensors from {source.name if source else 'no small checkpoint'} "
        f"({time.perf_counter() - t0:.1f} s)")
    return out


def run(ws: Workspace, plan: RunPlan, models: tuple[str, ...] | None = None, log: Log = print) -> list[dict[str, Any]]:
    """Build, export, profile and store every selected deployable architecture at its published size."""
    from exporters.formats import task_of
    from models.registry import get

    check_plan(plan)
    chosen = select(plan.papers, models)
    if not chosen:
        raise EdgeZooError("no deployment-scale model matches the selection",
                           "name papers or models that have a deploy() configuration (edgezoo papers lists them)")
    store = ws.store()
    plan = RunPlan(papers=plan.papers, formats=plan.formats, threads=plan.threads, scenario=scenario(),
                   lm_settings=dict(LM_SETTINGS))
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for name, paper in chosen:
        task = task_of({"task": get(name).task})  # a model of its own task (audio, bytes) exports as a classifier
        kind = "lm" if task == "lm" else "classify"
        try:
            ckpt = deploy_checkpoint(ws, name, log)
        except EdgeZooError as e:
            log(f"failed  build {name}-{SCALE}: {e}")
            continue
        job = Job(paper, ckpt.name, Path(), lambda *a, **k: {}, exports(task, plan.formats), kind, (), scale=SCALE)
        rows += SCENARIO_RUNNERS[kind](job, ckpt, ws, store, plan, log)
    log(f"done in {time.perf_counter() - t0:.1f} s; store: {ws.store_path}")
    store.close()
    return rows
