"""Parent side of profiling: one fresh child per (artifact, runtime, scenario), with a timeout.
Whatever happens in the child, the parent returns a record; failures are rows, not crashes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exporters.artifact import Artifact, check_integrity, git_commit, load_artifact
from models.errors import ArtifactError, EdgeZooError
from profiles import record as R
from profiles.device import environment, fingerprint
from profiles.launcher import MeasurementInterrupted, interrupted_result, run_child
from profiles.runtimes import DEFAULT_RUNTIME, check_options, child_env, resolve, with_defaults

@dataclass(frozen=True)
class Scenario:
    batch: int = 1
    warmup: int = 20
    min_iters: int = 200
    min_seconds: float = 0.5
    max_seconds: float = 20.0
    max_iters: int = 20_000
    input_size: int | None = None  # square input resolution (multi-scale artifacts); None: the declared input shape


def settings(scenario: Scenario) -> dict[str, Any]:
    """The scenario as stored and hashed; input_size only when set, so other records keep their keys."""
    return {k: v for k, v in dataclasses.asdict(scenario).items() if k != "input_size" or v is not None}


def per_input_size(scenario: Scenario | None, manifest: dict[str, Any]) -> list[Scenario]:
    """One scenario per input size an artifact declares (`input_sizes`, multi-scale models), else the one given."""
    scenario = scenario or Scenario()
    sizes = manifest.get("input_sizes") or []
    return [dataclasses.replace(scenario, input_size=int(s)) for s in sizes] or [scenario]


def request_key(artifact: Artifact, runtime: str, threads: int, scenario: Scenario, options: dict[str, Any],
                device: str | None = None) -> str:
    """What makes a measurement reusable: same bytes, runtime, threads, scenario, options and device (this machine
    unless `device` names another, as profiles/fleet.py does)."""
    blob = json.dumps({"sha": artifact.manifest.get("sha256"), "runtime": runtime, "threads": threads,
                       "scenario": settings(scenario), "options": with_defaults(runtime, options),
                       "device": device or fingerprint()["id"], "env": child_env(runtime)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def base_record(artifact: Artifact, runtime: str, threads: int, scenario: Scenario, key: str,
                options: dict[str, Any] | None = None) -> R.Record:
    m = artifact.manifest
    paper = m.get("paper") or {}
    art = R.Artifact(path=str(artifact.path), format=m.get("format"), compression=m.get("compression_name"),
                     compression_config=m.get("compression"), size_bytes=m.get("size_bytes"),
                     bits_per_weight=m.get("bits_per_weight"), sparsity=m.get("sparsity"),
                     weight_bytes=m.get("weight_bytes"), cost=m.get("cost"), sha256=m.get("sha256"),
                     foreign=bool(m.get("foreign")), verification=m.get("verification"))
    return R.Record(cache_key=key, model=m.get("model"), paper=paper.get("title"), paper_arxiv=paper.get("arxiv"),
                    artifact=art, runtime=runtime, threads=threads,
                    extra={"scale": m["scale"]} if m.get("scale") else {},  # app/deploy.py's published sizes
                    # runtime options (compute units, device) make scenarios of one artifact: kept with the scenario
                    scenario=R.Scenario("classify", extra={**settings(scenario),
                                                           **({"runtime_options": options} if options else {})}),
                    device=R.Device.from_dict(fingerprint()),
                    environment=R.Environment.from_dict({**environment(), "git_commit": git_commit()}))


def _unavailable_here(runtime: str, artifact: Artifact, options: dict[str, Any]) -> str | None:
    """A runtime (or runtime option, e.g. Metal) that cannot run on this machine at all needs no child for an
    artifact EdgeZoo exported and verified (its sha256 was just checked); a foreign file still goes to the child,
    which checks its structure, unless the option itself is what this machine lacks."""
    try:
        cls = resolve(runtime)
    except Exception:  # a runtime that does not import is the child's failure to report
        return None
    if (reason := cls.unavailable_with(options)) is not None:
        return reason
    return None if artifact.manifest.get("foreign") else cls.unavailable_here()


def _dims(spec: dict[str, Any]) -> str:
    return "x".join("N" if d is None else str(d) for d in spec["shape"])  # N: a dynamic (batch) dim


def check_inputs(artifact: Artifact, inputs: list[dict[str, Any]] | None) -> None:
    """`--input` specs given for an EdgeZoo artifact must match the inputs it was exported with (same count and rank;
    every fixed dim equal, a dynamic one (None) any; a multi-scale artifact's spatial dims any of its input_sizes),
    so that a wrong image size is refused here, before a child runs or anything is stored."""
    declared = artifact.manifest.get("inputs") or []
    if not inputs or not declared or artifact.manifest.get("foreign"):
        return
    sizes = set(artifact.manifest.get("input_sizes") or [])

    def fits(want: list[int | None], got: list[int]) -> bool:
        square = len(got) == 4 and got[2] == got[3] and got[2] in sizes
        return len(want) == len(got) and all(w is None or w == g or (square and i >= 2)
                                             for i, (w, g) in enumerate(zip(want, got)))

    if len(inputs) != len(declared) or not all(fits(d["shape"], u["shape"]) for d, u in zip(declared, inputs)):
        flags = " ".join(f"--input {d['name']}={_dims(d).replace('N', '1')}:{d['dtype']}" for d in declared)
        raise ArtifactError(f"{artifact.path.name} was exported for inputs {', '.join(map(_dims, declared))}, not "
                            f"{', '.join(map(_dims, inputs))}",
                            f"pass {flags}{' (or a size in ' + str(sorted(sizes)) + ')' if sizes else ''}, or "
                            "export the model at the size you need")


def measure(artifact_path: Path | Artifact, runtime: str | None = None, threads: int = 2,
            scenario: Scenario | None = None, options: dict[str, Any] | None = None,
            timeout: float = 180.0, inputs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Profile one artifact on one runtime in a fresh child process; returns the full record.
    `inputs` ([{"name", "shape", "dtype"}]) overrides the artifact's declared input specs (foreign models)."""
    if not isinstance(threads, int) or threads < 1:
        raise EdgeZooError(f"threads {threads!r} is not a positive integer", "pass threads >= 1, e.g. 2")
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise EdgeZooError(f"timeout {timeout!r} is not a finite positive number of seconds", "pass e.g. 180")
    artifact = artifact_path if isinstance(artifact_path, Artifact) else load_artifact(Path(artifact_path))
    check_inputs(artifact, inputs)
    runtime = runtime or DEFAULT_RUNTIME.get(artifact.manifest.get("format", ""), "onnxruntime")
    scenario = scenario or Scenario()
    options = with_defaults(runtime, check_options(runtime, options) if options else {})
    key = request_key(artifact, runtime, threads, scenario, options)
    base = base_record(artifact, runtime, threads, scenario, key, options)
    if scenario.input_size is not None and not (isinstance(scenario.input_size, int) and scenario.input_size >= 1):
        raise EdgeZooError(f"input size {scenario.input_size!r} is not a positive integer", "pass e.g. 32")
    request = {"runtime": runtime, "threads": threads, "scenario": settings(scenario), "options": options,
               "model_file": str(artifact.model_file), "folder": str(artifact.path),
               "inputs": inputs or artifact.manifest.get("inputs"), "evaluate": not artifact.manifest.get("foreign"),
               "env": child_env(runtime)}
    base.extra["child_env"] = request["env"]
    try:
        check_integrity(artifact)
    except ArtifactError as e:  # a failure row: the bytes on disk are not the ones exported and verified
        return base.updated(R.failure("failed", "ArtifactModified", str(e))).to_dict()
    if (reason := _unavailable_here(runtime, artifact, options)) is not None:  # exported + verified, runtime absent here
        return base.updated(R.failure("unavailable", "RuntimeUnavailable", reason,
                                      runtime_version=resolve(runtime).version())).to_dict()
    try:
        result = run_child("profiles.child", request, timeout,
                           env={"OMP_NUM_THREADS": str(threads), **request["env"]})
    except KeyboardInterrupt:
        raise MeasurementInterrupted(base.updated(interrupted_result("profiling")).to_dict()) from None
    record = base.updated(result)
    parity = record.parity
    if record.ok and parity and not parity.ok:
        record.status = R.Status("failed", "ParityMismatch",
                                 f"outputs disagree with the torch reference (top-1 agreement "
                                 f"{parity.top1_agreement:.2f}, SQNR {parity.sqnr_db:.1f} dB): "
                                 "the timing is not trustworthy; check the export or use milder compression")
    return record.to_dict()
