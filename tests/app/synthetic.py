"""A synthetic workspace for dashboard tests: records built through profiles.record.Record and its parts (so that a
change to the producer's schema breaks this generator's tests), in a real Store, and checkpoint cards."""

from __future__ import annotations

import json
import random
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.workspace import Workspace  # noqa: F401 - re-exported for tests
from profiles import record as R
from profiles.device import environment, fingerprint
from profiles.hostbench import BENCH_VERSION, CACHE_FILE
from profiles.store import COLUMNS, Store, _flat

MODELS = {"resnet": ("Deep Residual Learning", 0.98, 1.0), "mobilenetv2": ("MobileNetV2", 0.96, 0.6),
          "convmixer": ("Patches Are All You Need?", 0.97, 1.4)}
FORMATS = {"torch": "torch", "onnx": "onnxruntime", "coreml": "coreml", "mlx": "mlx"}
RUNTIME_OPTIONS = {"torch": {"num_threads": 2, "interop_threads": 1},  # what each runtime's options() reports
                   "onnxruntime": {"intra_op_num_threads": 2, "inter_op_num_threads": 1,
                                   "providers": ["CPUExecutionProvider"]},
                   "mlx": {"device": "Device(cpu, 0)", "threads_requested": 2, "threads_applied": False,
                           "dynamic_batch": True, "metadata": True}}
# compression spec (as `edgezoo export -c` takes it) -> (bits per weight, latency scale, accuracy drop)
COMPRESSIONS = {"none": (32, 1.0, 0.0), "fp16": (16, 0.7, 0.0), "int8": (8, 0.5, 0.004), "int4-b32": (4.5, 0.45, 0.02),
                "prune50": (32, 0.8, 0.01)}
# measured "here" (this machine's fingerprint id) so predicted-vs-measured has rows to compare
DEVICE = {"name": "host:Synthetic CPU x2", "id": fingerprint()["id"], "cpu": "Synthetic CPU", "logical_cores": 2}


@lru_cache(maxsize=None)
def _spec(text: str) -> tuple[str, str]:
    """(canonical name, JSON of the spec dict) as the exporter parses `text`."""
    from exporters.compression.spec import parse_spec

    spec = parse_spec(text)
    return spec.name, json.dumps(spec.to_dict())


@lru_cache(maxsize=1)
def _context() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(scenario settings, device, environment) as profiles.measure records them, with the synthetic device."""
    from profiles.measure import Scenario, settings

    return (settings(Scenario()), {**fingerprint(), **DEVICE},
            {**environment(), "git_commit": "0" * 40})


def _latency(samples: list[float], scenario: dict[str, Any]) -> R.Latency:
    """Latency stats of sorted samples (cheap approximations of profiles.stats; no bootstrap for 10k records)."""
    n = len(samples)
    mean = sum(samples) / n
    std = (sum((s - mean) ** 2 for s in samples) / (n - 1)) ** 0.5
    cut = n // 10
    return R.Latency(samples_ms=samples, n=n, median_ms=samples[n // 2], p90_ms=samples[int(n * 0.9)],
                     p99_ms=samples[int(n * 0.99)], mean_ms=mean,
                     trimmed_mean_ms=sum(samples[cut:n - cut]) / (n - 2 * cut), std_ms=std, cv=std / mean,
                     min_ms=samples[0], max_ms=samples[-1], median_ci95_ms=[samples[n // 2 - 5], samples[n // 2 + 5]],
                     extra={"stopped_by": "min_iters_and_seconds", "loop_seconds": sum(samples) / 1e3,
                            "min_seconds": scenario["min_seconds"], "below_min_seconds": False,
                            "below_min_iters": False})


def make_record(i: int, rng: random.Random, n_samples: int = 200) -> dict[str, Any]:
    from profiles.runtimes import child_env

    model = list(MODELS)[i % 3]
    fmt = list(FORMATS)[(i // 3) % 4]
    spec_text = list(COMPRESSIONS)[(i // 12) % 5]
    paper, acc, speed = MODELS[model]
    bits, lat_scale, acc_drop = COMPRESSIONS[spec_text]
    comp, spec = _spec(spec_text)
    scenario, device, env = _context()
    runtime = FORMATS[fmt]
    size = int(700_000 * speed * bits / 32)
    verification = {"kind": "parity", "runtime": runtime, "max_abs_err": 0.01, "sqnr_db": 40.0 - bits_noise(bits),
                    "top1_agreement": 0.99, "n": 360, "ok": True}
    art = R.Artifact(path=f"/synthetic/{model}/{fmt}-{comp}", format=fmt, compression=comp,
                     compression_config=json.loads(spec), size_bytes=size, bits_per_weight=bits, sparsity=0.0,
                     weight_bytes=size, cost={"flops": int(3e7 * speed), "activation_bytes": int(2e5 * speed)},
                     sha256=f"{i:064x}", foreign=False, verification=verification)
    rec = R.Record(created=f"2025-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}", cache_key=f"k{i}", model=model,
                   paper=paper, paper_arxiv="0000.00000", artifact=art, runtime=runtime, threads=2,
                   scenario=R.Scenario("classify", extra=dict(scenario)), device=R.Device.from_dict(device),
                   environment=R.Environment.from_dict(env), extra={"child_env": child_env(runtime)})
    if fmt == "coreml":  # Core ML cannot predict on Linux: an honest "unavailable" row
        rec.status = R.Status.failure("unavailable", "RuntimeUnavailable", "Core ML prediction needs macOS")
        return rec.to_dict()
    median = speed * lat_scale * (1 + 0.3 * rng.random()) * (0.8 if fmt == "onnx" else 1.0)
    samples = sorted(median * (1 + abs(rng.gauss(0, 0.05))) for _ in range(n_samples))
    rec.runtime_version = "1.0"
    rec.latency = _latency(samples, scenario)
    rec.memory = R.Memory(peak_rss_bytes=int(60e6 * speed + 1e6 * rng.random()), rss_before_load_bytes=int(40e6),
                          load_delta_bytes=int(5e6 * speed), peak_reset=True, peak_label="VmHWM after reset post-load")
    rec.accuracy = R.Quality(metric="top1", value=acc - acc_drop - 0.01 * rng.random(), dataset="test split", n=360)
    rec.parity = R.Parity(**{k: v for k, v in verification.items() if k not in ("kind", "runtime")},
                          reference="torch fp32")
    rec.extra.update(load_seconds=0.05, runtime_options=RUNTIME_OPTIONS[runtime], first_call_ms=3 * median,
                     input_shapes=[[1, 1, 8, 8]], load_average=[1.0, 1.0, 1.0])
    return rec.to_dict()


def bits_noise(bits: float) -> float:
    return 0.0 if bits >= 32 else 40.0 / bits


def bulk_add(store: Store, records: list[dict[str, Any]]) -> None:
    """Like Store.add for each record, but in one transaction (10,000 commits would dominate a benchmark)."""
    rows = [(*[_flat(r)[c] for c in COLUMNS], json.dumps(r)) for r in records]
    with store.conn:
        store.conn.executemany(f"INSERT INTO records ({', '.join(COLUMNS)}, record) VALUES "
                               f"({', '.join('?' * (len(COLUMNS) + 1))})", rows)


def write_card(ws: Workspace, name: str = "digits_resnet") -> Path:
    ckpt = ws.zoo / name
    ckpt.mkdir(parents=True, exist_ok=True)
    history = [{"epoch": e, "train_loss": 2.0 / (e + 1), "val_loss": 2.2 / (e + 1), "val_accuracy": 0.5 + 0.05 * e}
               for e in range(8)]
    card = {"model": "resnet", "args": {"width": 16}, "task": "classify", "dataset": "digits", "history": history,
            "paper": {"title": "Deep Residual Learning for Image Recognition", "arxiv": "1512.03385",
                      "code": "https://github.com/KaimingHe/deep-residual-networks"},
            "metrics": {"best_epoch": 7, "val_accuracy": 0.85, "test_accuracy": 0.84, "train_seconds": 12.5}}
    (ckpt / "card.json").write_text(json.dumps(card))
    return ckpt


def write_lm_card(ws: Workspace, name: str = "openelm_tiny", context: int = 128) -> Path:
    """A language-model checkpoint card (no weights): its task and context are what the Run page reads."""
    ckpt = ws.zoo / name
    ckpt.mkdir(parents=True, exist_ok=True)
    card = {"model": "openelm", "task": "lm", "args": {"max_context_length": context, "vocab_size": 256},
            "tokenizer": "bytes", "paper": {"title": "OpenELM", "arxiv": "2404.14619"}}
    (ckpt / "card.json").write_text(json.dumps(card))
    return ckpt


def write_manifest(folder: Path, lm: bool = False) -> Path:
    """An artifact folder's manifest (an LM one also has lm_manifest.json), without the model files."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"format": "onnx", "task": "lm" if lm else "classification"}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    if lm:
        (folder / "lm_manifest.json").write_text(json.dumps(manifest))
    return folder


def write_host_profile(ws: Workspace, threads: int = 2) -> None:
    """A cached host profile (what `edgezoo report` measures once), so nothing is measured in tests."""
    dev = {"name": "host", "title": "this machine (synthetic profile)", "kind": "host", "vendor": "measured",
           "peak": {"fp32": 5e10, "fp16": None, "int8": None}, "memory_bandwidth": 1e10, "memory_bytes": 2**33,
           "compute_units": threads, "compute_unit": "thread", "sources": {}, "notes": {}, "method": "synthetic"}
    key = f"{fingerprint()['id']}/threads={threads}/v{BENCH_VERSION}"
    (ws.root / CACHE_FILE).write_text(json.dumps({key: dev}))


def build(root: Path, n: int = 60, seed: int = 0, use_add: bool = True) -> Workspace:
    """A workspace with `n` records (Store.add each, or one bulk transaction) and one checkpoint card."""
    ws = Workspace(Path(root))
    rng = random.Random(seed)
    recs = [make_record(i, rng) for i in range(n)]
    store = ws.store()
    if use_add:
        for r in recs:
            store.add(r)
    else:
        bulk_add(store, recs)
    store.close()
    write_card(ws)
    write_host_profile(ws)
    return ws
