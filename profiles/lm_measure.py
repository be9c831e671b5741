"""LM profiling in a fresh child process per (artifact, runtime): held-out bpb / perplexity, time to first token,
prefill and decode tokens/s, peak memory. Generation runs a warm-up pass and then `repeats` passes of prompt +
`new_tokens` greedy steps: TTFT is the median prefill, decode tokens/s the inverse median step over every kept step
(`latency` holds them, profiles/stats.summarize; the cold first prefill is `ttft_first_s`).

Artifact folders (made by `exporters.lm.artifact.export_lm`) hold `lm_manifest.json` naming the format:
torch (checkpoint folder), onnx (prefill/decode graphs), mlx (mlx-lm folder), coreml (stateful .mlpackage: macOS
only; elsewhere the child records status "unavailable", as the vision path does).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from profiles import memory
from profiles import record as R
from profiles.device import environment, fingerprint
from profiles.launcher import MeasurementInterrupted, interrupted_result, run_child
from profiles.runtimes import DEFAULT_RUNTIME, resolve
from profiles.runtimes.base import Runtime, RuntimeUnavailable
from profiles.runtimes.coreml_rt import LM_UNAVAILABLE as COREML_UNAVAILABLE  # noqa: F401 (the LM record's message)

RUNTIME_OF = DEFAULT_RUNTIME  # format -> the runtime that measures it by default


def _bpb(rt: Runtime, context: int, windows: int) -> dict[str, Any]:
    from trainers.text import eval_windows, load_text

    w = eval_windows(load_text().val, context, windows).numpy()
    logits = rt.prefill(w[:, :-1])
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    nll = float(-np.take_along_axis(logp, w[:, 1:, None], -1).mean())
    return R.Quality("bits_per_byte", nll / math.log(2), "pydoc_data.topics validation (last 10 %)",
                     int(w[:, 1:].size), extra={"perplexity": math.exp(nll)}).to_dict()


def child(req: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    rt = resolve(req["runtime"])()
    rt.load_lm(Path(req["folder"]), req["threads"])
    out: dict[str, Any] = {"runtime_version": rt.version(), "load_seconds": time.perf_counter() - t0}
    peak_reset = memory.reset_peak()
    out["accuracy"] = _bpb(rt, req["context"], req["eval_windows"]) if req.get("byte_vocab", True) else {
        "metric": "bits_per_byte", "value": None,
        "note": "not a byte-level model: bpb on pydoc bytes needs its own tokenizer, which is not bundled"}
    prompt = np.random.default_rng(0).integers(32, 127, (1, req["prompt_len"]))
    ttfts, samples = [], []
    for rep in range(1 + req.get("repeats", 3)):  # pass 0 warms the decode path; its steps are not kept
        t1 = time.perf_counter()
        logits = rt.prefill(prompt)
        ttfts.append(time.perf_counter() - t1)
        tok = logits[:, -1].argmax(-1)
        for _ in range(req["new_tokens"]):
            t = time.perf_counter()
            logits = rt.decode_step(tok[:, None].astype(np.int64))
            tok = logits[:, -1].argmax(-1)
            if rep:
                samples.append(time.perf_counter() - t)
    ttft = float(np.median(ttfts[1:]))
    out["load_average"] = list(os.getloadavg())  # 1, 5, 15 min after the loop: how shared the machine was
    lat = R.Latency.of(samples, keep_samples=False)
    out.update(status="ok", ttft_s=ttft, ttft_first_s=ttfts[0], prefill_tokens_per_s=req["prompt_len"] / ttft,
               decode_tokens_per_s=1.0 / float(np.median(samples)), latency=lat.to_dict(),
               memory=R.Memory(peak_rss_bytes=memory.peak_rss(), peak_reset=peak_reset,
                               peak_label=memory.peak_label(peak_reset)).to_dict())
    if req.get("quality_eval"):  # after the memory peak is read: it may load the checkpoint's reference in torch
        out["accuracy"].update(_extra_quality(rt, req["quality_eval"]))
    return out


def _extra_quality(rt: Runtime, qe: dict[str, Any]) -> dict[str, Any]:
    """More quality figures of the artifact (e.g. a policy's reward, KL and win rate), from the function its
    checkpoint's card names under `quality_eval`: (runtime, settings, checkpoint folder) -> {name: value}."""
    import importlib

    module, name = qe["function"].rsplit(".", 1)
    return getattr(importlib.import_module(module), name)(rt, qe["settings"], qe["checkpoint"])


def quality_eval(man: dict[str, Any]) -> dict[str, Any] | None:
    """The `quality_eval` of the artifact's checkpoint card (a function under trainers/ and its settings), or None."""
    from models.checkpoint import read_card
    from models.errors import EdgeZooError

    try:
        qe = read_card(Path(man["checkpoint"])).get("quality_eval") if man.get("checkpoint") else None
    except EdgeZooError:
        return None
    if not isinstance(qe, dict) or not str(qe.get("function", "")).startswith("trainers."):
        return None
    return {**qe, "checkpoint": man["checkpoint"]}


def lm_request_key(manifest: dict[str, Any], req: dict[str, Any]) -> str:
    """What makes an LM measurement reusable: the same exported bytes, runtime, settings and device."""
    blob = json.dumps({"sha": manifest.get("sha256"), **{k: v for k, v in req.items() if k != "folder"},
                       "device": fingerprint()["id"]}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def lm_request(folder: Path, runtime: str, threads: int = 2, prompt_len: int = 32, new_tokens: int = 32,
               context: int = 64, eval_windows: int = 64, repeats: int = 3) -> dict[str, Any]:
    """The child's request for one LM artifact folder (and, less the folder, the key of its measurement)."""
    from exporters.lm.artifact import read_lm_manifest

    man = read_lm_manifest(folder, check_sha=False)  # only its vocabulary: measure_lm checks the bytes
    req = {"folder": str(Path(folder).resolve()), "runtime": runtime, "threads": threads, "prompt_len": prompt_len,
           "new_tokens": new_tokens, "context": context, "eval_windows": eval_windows, "repeats": repeats,
           "byte_vocab": man.get("vocab_size", 256) == 256}
    if (qe := quality_eval(man)) is not None:
        req["quality_eval"] = qe
    return req


def measure_lm(folder: Path, runtime: str | None = None, threads: int = 2, prompt_len: int = 32, new_tokens: int = 32,
               context: int = 64, eval_windows: int = 64, timeout: float = 600.0, repeats: int = 3) -> dict[str, Any]:
    """Profile one LM artifact folder in a child process; returns a record for profiles.store.Store.add."""
    from exporters.lm.artifact import read_lm_manifest

    folder = Path(folder).resolve()  # one key per artifact however the path was typed
    man = read_lm_manifest(folder)
    runtime = runtime or RUNTIME_OF[man["format"]]
    req = lm_request(folder, runtime, threads, prompt_len, new_tokens, context, eval_windows, repeats)
    fields = {k: man.get(k) for k in ("format", "compression", "size_bytes", "bits_per_weight", "checkpoint",
                                      "checkpoint_sha256")}
    if man.get("active_params"):  # dynamic-compute models (DynaMoE): active parameters per token, counted at export
        fields["active_params"] = man["active_params"]
    art = R.Artifact.from_dict(fields)
    record = R.Record(cache_key=lm_request_key(man, req), model=man.get("model", "openelm"), paper="openelm",
                      artifact=art,
                      runtime=runtime, threads=threads, scenario=R.Scenario("lm-generate", extra=req),
                      device=R.Device.from_dict(fingerprint()), environment=R.Environment.from_dict(environment()),
                      extra={"scale": man["scale"]} if man.get("scale") else {})
    try:
        res = run_child("profiles.lm_measure", req, timeout, env={"OMP_NUM_THREADS": str(threads)})
    except KeyboardInterrupt:
        raise MeasurementInterrupted(record.updated(interrupted_result("LM profiling")).to_dict()) from None
    return record.updated(res).to_dict()


def main() -> None:
    req = json.loads(Path(sys.argv[1]).read_text())
    try:
        res = child(req)
    except RuntimeUnavailable as e:
        res = R.failure("unavailable", "RuntimeUnavailable", str(e))
    except Exception as e:  # a failure is a row, not a crash
        res = R.failure("failed", e.__class__.__name__, str(e)[:500], traceback=traceback.format_exc()[-3000:])
    Path(sys.argv[2]).write_text(json.dumps(res, default=float))


if __name__ == "__main__":
    main()
