"""`edgezoo run`, the main job: for every paper plug-in (trainers/papers.py), train its deployable checkpoints at
small scale, export them in every format x compression the paper declares, profile each artifact in a fresh child,
store every record (paper key set), summarise. Each step reuses what is unchanged: checkpoints by recipe hash,
artifacts by content hash, measurements by (artifact sha, runtime, threads, scenario, device)."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from app.workspace import Workspace, safe_name
from models.errors import EdgeZooError

REUSABLE_STATUSES = ("ok", "unavailable")

Log = Callable[[str], None]


@dataclass
class RunPlan:
    papers: tuple[str, ...] | None = None   # plug-in keys; None: every plug-in (unless `recipes` are given)
    recipes: tuple[str, ...] = ()           # plain classifier recipes, exported like the baselines
    formats: tuple[str, ...] | None = None  # keep only these formats
    format_specs: dict[str, tuple[str, ...]] | None = None  # exports of `recipes` (default: the baselines')
    threads: int = 2
    overrides: tuple[str, ...] = ()         # --set key=value applied to every recipe
    scenario: Any = None                    # profiles.measure.Scenario for vision artifacts; None = its defaults
    lm_settings: dict[str, Any] = field(default_factory=lambda: {"prompt_len": 32, "new_tokens": 32,
                                                                  "eval_windows": 64, "repeats": 3})
    specdec_settings: dict[str, Any] = field(default_factory=lambda: {
        "gammas": [4], "contexts": [48], "new_tokens": 16, "n_prompts": 2, "modes": ["greedy"],
        "kv_group": 8, "residual": 8})
    devices: tuple[str, ...] = ()           # fleet devices that profile classifier artifacts instead of this machine
    address: str | None = None              # the fleet's Ray head (HOST:PORT) when `devices` are named


@dataclass(frozen=True)
class Job:
    """One checkpoint to train (or reuse) and what to build from it, for one paper (None: a plain --recipe)."""
    paper: str | None
    checkpoint: str  # the recipe's name after overrides: its zoo folder
    recipe: Path
    train: Callable[..., dict[str, Any]]
    exports: dict[str, tuple[str, ...]]
    scenario: str
    overrides: tuple[str, ...]
    needs: tuple[str, ...] = ()  # checkpoints it is trained from (a Label Refinery student's refinery)
    scale: str | None = None     # "deploy" for app/deploy.py's published-size models (records say so)


def check_plan(plan: RunPlan) -> None:
    """The plan's formats and thread count (either scale of `edgezoo run`)."""
    from exporters import FORMATS

    if plan.formats is not None:
        unknown = sorted(set(plan.formats) - set(FORMATS))
        if unknown:
            raise EdgeZooError(f"unknown format {', '.join(map(repr, unknown))}", f"use any of: {', '.join(FORMATS)}")
    if not isinstance(plan.threads, int) or isinstance(plan.threads, bool) or plan.threads < 1:
        raise EdgeZooError(f"threads {plan.threads!r} is not an integer >= 1", "pass e.g. --threads 2")


def plan_jobs(plan: RunPlan) -> list[Job]:
    """The plan as jobs, every recipe, name, format and compression checked before anything is trained or written."""
    from trainers import papers as registry

    check_plan(plan)
    found = registry.discover()
    unknown = sorted(set(plan.papers or ()) - set(found))
    if unknown:
        raise EdgeZooError(f"no paper plug-in {', '.join(map(repr, unknown))}", f"use any of: {', '.join(found)}")
    specs: list[tuple[str | None, Path, Any, dict, str, tuple[str, ...], tuple[str, ...]]] = []
    baseline_exports = dict(found["baselines"].deployables[0].exports)
    for name in plan.recipes:
        exports = plan.format_specs if plan.format_specs is not None else baseline_exports
        path, train, paper = registry.recipe_trainer(name)
        if paper is not None and found[paper].task != "classification":
            raise EdgeZooError(f"recipe {name} trains a {found[paper].task} model, not a classifier",
                               f"run it through its paper: edgezoo run --papers {paper}")
        specs.append((paper, path, train, dict(exports), "classify", (), ()))
    keys = plan.papers if plan.papers is not None else (() if plan.recipes else _default_order(found))
    for key in keys:
        paper = found[key]
        for d in paper.deployables:
            specs.append((key, paper.recipe_path(d.recipe), registry.trainer_for(paper, d), dict(d.exports),
                          d.scenario, d.needs, tuple(d.overrides)))
    jobs = [_job(*spec, plan) for spec in specs]
    _check_names(jobs)
    _check_specs(jobs)
    return jobs


def _default_order(found: dict[str, Any]) -> tuple[str, ...]:
    """Every paper, then the baselines."""
    return tuple(sorted(found, key=lambda k: (found[k].baseline, k)))


def _job(paper: str | None, recipe: Path, train: Callable[..., dict[str, Any]], exports: dict[str, tuple[str, ...]],
         scenario: str, needs: tuple[str, ...], own: tuple[str, ...], plan: RunPlan) -> Job:
    from trainers.recipe import read_recipe_yaml

    overrides = (*own, *plan.overrides)  # the deployable's own settings, then the user's --set
    train(recipe, Path("unused"), list(overrides), check_only=True)  # every key, type and range of the recipe
    name = safe_name(read_recipe_yaml(recipe, list(overrides))[0]["name"], f"recipe {recipe.name}: name")
    if plan.formats is not None:
        exports = {f: s for f, s in exports.items() if f in plan.formats}
    return Job(paper, name, recipe, train, exports, scenario, overrides, needs)


def _check_names(jobs: list[Job]) -> None:
    """Two different recipes must not write one checkpoint (papers sharing one recipe share its checkpoint)."""
    owner: dict[str, Path] = {}
    for job in jobs:
        if owner.setdefault(job.checkpoint, job.recipe) != job.recipe:
            raise EdgeZooError(f"recipes {owner[job.checkpoint]} and {job.recipe} both name the checkpoint "
                               f"{job.checkpoint!r}", "give each recipe its own name (do not --set name= for several)")


def _check_specs(jobs: list[Job]) -> None:
    from exporters.compression.spec import parse_spec

    tasks = {"lm": "lm", "classify": "classification"}
    for job in jobs:
        for fmt, specs in job.exports.items():
            for spec in specs:
                if job.scenario in tasks:
                    parse_spec(spec, fmt, tasks[job.scenario])


def recipe_hash(job: Job, ws: Workspace) -> str:
    """What makes a trained checkpoint reusable: the recipe's content after overrides, who trains it, and the
    weights of the checkpoints it is trained from."""
    from models.checkpoint import checkpoint_hash
    from trainers.recipe import read_recipe_yaml

    data, _ = read_recipe_yaml(job.recipe, list(job.overrides))
    sources = {name: checkpoint_hash(ws.checkpoint_dir(name)) for name in job.needs}
    blob = json.dumps({"recipe": data, "trainer": f"{job.train.__module__}.{job.train.__qualname__}",
                       "sources": sources}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def train_or_reuse(job: Job, ws: Workspace, log: Log) -> Path:
    from models.checkpoint import annotate_card, read_card

    out = ws.checkpoint_dir(job.checkpoint)
    wanted = recipe_hash(job, ws)
    try:
        if read_card(out).get("main_job_hash") == wanted:
            log(f"reuse   {job.checkpoint}: checkpoint up to date (recipe {wanted})")
            return out
    except EdgeZooError:
        pass
    log(f"train   {job.checkpoint} ({job.paper or 'recipe'}: {job.recipe.name})")
    t0 = time.perf_counter()
    job.train(job.recipe, out, list(job.overrides))
    annotate_card(out, main_job_hash=wanted)
    log(f"        trained in {time.perf_counter() - t0:.1f} s")
    return out


def failure_record(stage: str, paper: str | None, model: str, fmt: str, spec: str, err: Exception,
                   scale: str | None = None) -> dict[str, Any]:
    from profiles.record import Artifact, Record, Status

    return Record(model=model, paper=paper, artifact=Artifact(format=fmt, compression=spec),
                  status=Status("failed", err.__class__.__name__, f"{stage}: {err}"),
                  extra={"scale": scale} if scale else {}).to_dict()


def _reused(store, key: str) -> dict[str, Any] | None:
    for status in REUSABLE_STATUSES:
        rows = store.rows("WHERE cache_key=? AND status=?", (key, status))
        if rows:
            return rows[-1]
    return None


def _store(store, record: dict[str, Any], paper: str | None) -> dict[str, Any]:
    if paper is not None:
        record["paper"] = paper
    rid = store.add(record)  # checked through profiles.record.Record
    return store.rows("WHERE id=?", (rid,))[0]


def profile_or_reuse(artifact, store, threads: int, scenario: Any = None, paper: str | None = None) -> dict[str, Any]:
    from profiles.launcher import MeasurementInterrupted
    from profiles.measure import Scenario, measure, request_key
    from profiles.runtimes import DEFAULT_RUNTIME

    runtime = DEFAULT_RUNTIME[artifact.manifest["format"]]
    scenario = scenario or Scenario()
    if (row := _reused(store, request_key(artifact, runtime, threads, scenario, {}))) is not None:
        return row
    try:
        record = measure(artifact, runtime, threads, scenario)
    except MeasurementInterrupted as e:
        _store(store, e.record, paper)
        raise
    return _store(store, record, paper)


def profile_on_devices(artifact, store, plan: RunPlan, scenario: Any, paper: str | None) -> list[dict[str, Any]]:
    """One row per fleet device (profiles/fleet.py): reused by the device's key, else measured there and stored here."""
    from profiles import fleet

    jobs = fleet.plan([artifact], list(plan.devices), plan.address, None, plan.threads, scenario)
    reused = {job.key: _reused(store, job.key) for job in jobs}
    rows = [row for row in reused.values() if row is not None]
    todo = [job for job in jobs if reused[job.key] is None]
    fleet.run_jobs(todo, plan.address, plan.threads, scenario, on_record=lambda r: rows.append(_store(store, r, paper)))
    return rows


def _classify_job(job: Job, ckpt: Path, ws: Workspace, store, plan: RunPlan, log: Log) -> list[dict[str, Any]]:
    from exporters.artifact import export_checkpoint
    from profiles.measure import per_input_size

    model = json.loads((ckpt / "card.json").read_text())["model"]
    rows = []
    for fmt, specs in job.exports.items():
        for spec in specs:
            t0 = time.perf_counter()
            try:
                artifact = export_checkpoint(ckpt, fmt, spec, workspace=ws.root)
            except EdgeZooError as e:
                log(f"failed  export {model} {fmt} {spec}: {e}")
                rows.append(_store(store, failure_record("export", job.paper, model, fmt, spec, e, job.scale), None))
                continue
            t1 = time.perf_counter()
            for scenario in per_input_size(plan.scenario, artifact.manifest):  # each size of a multi-scale model
                t2 = time.perf_counter()
                at = f" at {scenario.input_size}px" if scenario.input_size else ""
                for row in (profile_on_devices(artifact, store, plan, scenario, job.paper) if plan.devices
                            else [profile_or_reuse(artifact, store, plan.threads, scenario, job.paper)]):
                    on = f" on {row['device']}" if plan.devices else ""
                    log(f"{row['status']:<7} {job.paper or model} {model} {fmt} {artifact.manifest['compression_name']}"
                        f"{at}{on}{_p50(row)}  (export {t1 - t0:.1f} s, profile {time.perf_counter() - t2:.1f} s)")
                    rows.append(row)
    return rows


def _lm_job(job: Job, ckpt: Path, ws: Workspace, store, plan: RunPlan, log: Log) -> list[dict[str, Any]]:
    from exporters.artifact import export_checkpoint
    from exporters.lm.artifact import read_lm_manifest
    from profiles.launcher import MeasurementInterrupted
    from profiles.lm_measure import RUNTIME_OF, lm_request_key, lm_request, measure_lm

    rows = []
    for fmt, specs in job.exports.items():
        for spec in specs:
            t0 = time.perf_counter()
            try:  # the workspace's own folder: reused when up to date, replaced otherwise
                out = export_checkpoint(ckpt, fmt, spec, workspace=ws.root).path
            except EdgeZooError as e:
                log(f"failed  export openelm {fmt} {spec}: {e}")
                failed = failure_record("export", job.paper, "openelm", fmt, spec, e, job.scale)
                rows.append(_store(store, failed, None))
                continue
            t1 = time.perf_counter()
            req = lm_request(out, RUNTIME_OF[fmt], plan.threads, **plan.lm_settings)
            row = _reused(store, lm_request_key(read_lm_manifest(out), req))
            if row is None:
                try:
                    record = measure_lm(out, threads=plan.threads, **plan.lm_settings)
                except MeasurementInterrupted as e:
                    _store(store, e.record, job.paper)
                    raise
                row = _store(store, record, job.paper)
            log(f"{row['status']:<7} {job.paper} openelm {fmt} {spec}  (export {t1 - t0:.1f} s, "
                f"profile {time.perf_counter() - t1:.1f} s)")
            rows.append(row)
    return rows


def _specdec_job(job: Job, ckpt: Path, ws: Workspace, store, plan: RunPlan, log: Log) -> list[dict[str, Any]]:
    from models.checkpoint import checkpoint_hash
    from profiles.device import fingerprint
    from profiles.specdec_measure import measure_specdec

    settings = {**plan.specdec_settings, "threads": 1}
    key = hashlib.sha256(json.dumps({"ckpt": checkpoint_hash(ckpt), **settings, "device": fingerprint()["id"]},
                                    sort_keys=True).encode()).hexdigest()[:24]
    reused = store.rows("WHERE cache_key=? AND status='ok'", (key,))
    if reused:
        log(f"reuse   {job.paper} speculative decoding on {ckpt.name} ({len(reused)} records)")
        return reused
    t0 = time.perf_counter()
    records = measure_specdec(ckpt, log=log, **settings)
    rows = []
    for record in records:
        record["cache_key"] = key
        rows.append(_store(store, record, job.paper))
    log(f"ok      {job.paper} speculative decoding on {ckpt.name}: {len(rows)} records "
        f"({time.perf_counter() - t0:.1f} s)")
    return rows


SCENARIO_RUNNERS = {"classify": _classify_job, "lm": _lm_job, "specdec": _specdec_job}


def run(ws: Workspace, plan: RunPlan | None = None, log: Log = print) -> list[dict[str, Any]]:
    """The main job. Returns the summary rows (one per artifact x runtime, failures included)."""
    plan = plan or RunPlan()
    jobs = plan_jobs(plan)
    if plan.devices:  # every named device connected, before anything is trained
        from profiles import fleet

        fleet.plan([], list(plan.devices), plan.address or "")
        if any(job.scenario != "classify" for job in jobs):
            log("note    language-model measurements run on this machine: --on covers classifier artifacts")
    store = ws.store()
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for job in jobs:
        try:
            ckpt = train_or_reuse(job, ws, log)
        except EdgeZooError as e:
            log(f"failed  train {job.checkpoint}: {e}")
            rows.append(_store(store, failure_record("train", job.paper, job.checkpoint, "-", "-", e), None))
            continue
        rows += SCENARIO_RUNNERS[job.scenario](job, ckpt, ws, store, plan, log)
    log(f"done in {time.perf_counter() - t0:.1f} s; store: {ws.store_path}")
    store.close()
    return rows


def _p50(row: dict[str, Any]) -> str:
    return "" if row.get("p50_ms") is None else f"  p50 {row['p50_ms']:.3f} ms"
