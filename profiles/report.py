"""Device reports: `write_report(ws, device, outs)` writes a self-contained HTML (plotly inlined) and/or Markdown
report of the results store: environment and methodology, per-model tables, the accuracy/latency Pareto front,
parity, roofline predictions for a device (always labelled "predicted"), measured vs predicted on this host, and one
section per paper plug-in (its artifacts' newest records and its claim verdict)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.errors import EdgeZooError
from profiles import roofline
from profiles.catalog import FIGURES, Device, UnknownDeviceError, load_devices
from profiles.device import fingerprint
from profiles.query import is_lm, latest, pareto_front, records as stored_records
from profiles.report_figures import latency_accuracy_figure, measured_vs_predicted_figure
from profiles.report_papers import paper_sections
from profiles.report_render import Section, Table, render_html, render_markdown

SUFFIXES = {".html": render_html, ".htm": render_html, ".md": render_markdown}


class ReportError(EdgeZooError):
    pass


@dataclass
class ReportData:
    records: list[dict[str, Any]]      # latest record per measurement key
    device: Device                      # the prediction target
    hosts: dict[int, Device]            # measured host profile per thread count
    predictions: list[dict[str, Any]]
    comparison: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    store_path: Path
    lm_records: list[dict[str, Any]] = field(default_factory=list)  # language-model records (bpb, tokens/s)
    all_records: list[dict[str, Any]] = field(default_factory=list)  # every record (the paper sections pick newest)
    claims: list[dict[str, Any]] = field(default_factory=list)  # every stored claim check


def _f(v: Any, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def _size(n: Any) -> str:
    if n is None:
        return "-"
    for shift, unit in ((30, "GiB"), (20, "MiB"), (10, "KiB")):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.{1 if shift == 10 else 2}f} {unit}"
    return f"{n} B"


def _si(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.3g} {prefix}{unit}"
    return f"{v:.3g} {unit}"


def _art(r: dict[str, Any]) -> dict[str, Any]:
    return r.get("artifact") or {}


# ---------------------------------------------------------------- data


def _load_records(ws) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(latest record per measurement key, every record, every claim check)."""
    if not ws.store_path.exists():
        raise ReportError(f"no results store at {ws.store_path}", "run `edgezoo run` (or `edgezoo profile`) first")
    store = ws.store()
    try:
        records, claims = stored_records(store), store.claims()
    finally:
        store.close()
    if not records:
        raise ReportError(f"the results store {ws.store_path} is empty", "run `edgezoo run` first")
    return latest(records), records, claims


def _resolve_device(name: str | None, hosts: dict[int, Device]) -> Device:
    catalog = load_devices()
    if name in (None, "host"):
        return hosts[min(hosts, key=lambda t: abs(t - 2))]
    if name not in catalog:
        raise UnknownDeviceError(f"unknown device {name!r}",
                                 f"use one of: host, {', '.join(sorted(catalog))} (profiles/devices/*.yaml)")
    return catalog[name]


def collect(ws, device: str | None = None) -> ReportData:
    """Everything a report shows, computed once (host profile measured once per machine and thread count)."""
    from profiles.hostbench import host_profile

    if device not in (None, "host"):
        _resolve_device(device, {})  # a bad name fails before the store is read or the host is measured
    records, all_records, claims = _load_records(ws)
    lm_records = [r for r in records if is_lm(r)]
    records = [r for r in records if not is_lm(r)]
    host_id = fingerprint()["id"]
    threads = {int(r["threads"]) for r in records if (r.get("device") or {}).get("id") == host_id and r.get("threads")}
    hosts = {t: host_profile(ws.root, t) for t in sorted(threads or {2})}
    target = _resolve_device(device, hosts)
    predictions, skipped = roofline.predict_records(records, target)
    comparison = []
    for t, host in hosts.items():
        rows, more = roofline.compare_measured([r for r in records if r.get("threads") == t], host, host_id)
        comparison += rows
        seen = {(s["id"], s["reason"]) for s in skipped}
        skipped += [s for s in more if not s["reason"].startswith("not measured") and (s["id"], s["reason"]) not in seen]
    return ReportData(records, target, hosts, predictions, comparison, skipped, ws.store_path, lm_records, all_records,
                      claims)


# ---------------------------------------------------------------- sections


def _environment(d: ReportData) -> Section:
    fp = fingerprint()
    envs = Counter(tuple(sorted((r.get("environment") or {}).items())) for r in d.records if r.get("environment"))
    env = dict(envs.most_common(1)[0][0]) if envs else {}
    runtimes = sorted({f"{r['runtime']} {r.get('runtime_version')}" for r in d.records if r.get("runtime_version")})
    machine = f"{fp['cpu']} ({fp['machine']}, {fp['logical_cores']} logical cores, {_size(fp.get('memory_bytes'))} RAM)"
    rows = [["machine", machine],
            ["system", f"{fp['system']} {fp['release']}"], ["device fingerprint", fp["id"]],
            ["python / numpy", f"{env.get('python', '-')} / {env.get('numpy', '-')}"],
            ["runtimes", ", ".join(runtimes) or "-"], ["git commit", str(env.get("git_commit") or "-")],
            ["results store", f"{d.store_path} ({len(d.records)} measurements)"],
            ["report written", time.strftime("%Y-%m-%d %H:%M:%S %z")]]
    rows += [[f"host profile, {t} threads", f"fp32 matmul {_si(h.peak['fp32'], 'FLOP/s')}, copy bandwidth "
              f"{_si(h.memory_bandwidth, 'B/s')}"] for t, h in d.hosts.items()]
    return Section("Environment", [Table("Environment", ["item", "value"], rows)])


def _methodology(d: ReportData) -> Section:
    sc = next((r.get("scenario") for r in d.records if r.get("scenario")), {}) or {}
    host = next(iter(d.hosts.values()))
    return Section("Methodology", [
        "Each (artifact, runtime, scenario) is measured in a fresh child process (python -m profiles.child), so "
        "imports and peak memory are its own; the parent kills it after a timeout, and a crash, timeout or parity "
        "mismatch becomes a failure row, never a missing one.",
        "Threads are pinned: OMP_NUM_THREADS and the runtime's own setting (torch.set_num_threads, onnxruntime "
        "intra_op_num_threads) equal the threads column.",
        f"Latency: load and the first call are timed separately; then {sc.get('warmup', '?')} untimed warm-up "
        f"calls; then a timed loop until at least {sc.get('min_iters', '?')} calls and {sc.get('min_seconds', '?')} s "
        f"(capped at {sc.get('max_seconds', '?')} s), batch {sc.get('batch', '?')}. Every sample is kept; p50 is "
        "the median, p90 needs >= 64 samples to mean anything.",
        "Peak memory: after loading, the child resets the kernel's peak-RSS watermark (writes 5 to "
        "/proc/self/clear_refs) and reads VmHWM from /proc/self/status after the timed loop: the process's peak "
        "resident set during inference, runtime included (ru_maxrss on macOS).",
        "Accuracy is top-1 on the held-out test split stored with the artifact; parity compares the artifact's "
        "outputs with the torch fp32 model it was exported from, after torch-level compression such as pruning (SQNR, max abs error, top-1 agreement).",
        "Roofline (predicted): time = max(FLOPs / peak, bytes / bandwidth), with FLOPs from torch's "
        "FlopCounterMode and bytes = stored weight bytes + fp32 activation bytes (input and every leaf module's "
        "output). Precision follows what the runtime computes in: fp16 for Core ML / ONNX fp16, int8 only for "
        "ONNX int8 (dynamic quantization), fp32 otherwise (weight-only int8/int4/palettes are dequantized). "
        "It is a lower bound: no kernel-launch or framework overhead, no cache reuse; it does not check that a "
        "runtime can target the device (ONNX on a Neural Engine is predicted on the same roofline as Core ML).",
        f"Host profile: {host.method}. Catalog figures are vendor peaks (dense), each with a public source.",
    ])


def _result_row(r: dict[str, Any]) -> list[str]:
    a, lat, par = _art(r), r.get("latency") or {}, r.get("parity") or {}
    peak = (r.get("memory") or {}).get("peak_rss_bytes")
    status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r.get('error_class') or ''}"
    return [str(a.get("format")), str(a.get("compression")), str(r.get("runtime")), _size(a.get("size_bytes")),
            _f(a.get("bits_per_weight"), ".2f"), _f(lat.get("median_ms")), _f(lat.get("p90_ms")),
            _f(peak / (1 << 20) if peak else None, ".0f"), _f((r.get("accuracy") or {}).get("value")),
            _f(par.get("sqnr_db"), ".1f"), status]


def _measured_on(r: dict[str, Any]) -> str:
    return str((r.get("device") or {}).get("name") or "-")


def _results(d: ReportData) -> Section:
    """One table per model, and per measured device when records come from several (fleet devices)."""
    headers = ["format", "compression", "runtime", "size", "bits/w", "p50 ms", "p90 ms", "peak MiB", "accuracy",
               "parity SQNR dB", "status"]
    groups = sorted({(_measured_on(r), str(r.get("model"))) for r in d.records})
    several = len({dev for dev, _ in groups}) > 1
    tables = [Table(f"Results: {m}" + (f" on {dev}" if several else ""), headers,
                    [_result_row(r) for r in d.records if (_measured_on(r), str(r.get("model"))) == (dev, m)])
              for dev, m in groups]
    return Section("Results per measured device, model and format" if several else "Results per model and format",
                   tables)


def _pareto(d: ReportData) -> Section:
    points = [r for r in d.records if r["status"] == "ok" and (r.get("accuracy") or {}).get("value") is not None
              and (r.get("latency") or {}).get("median_ms")]
    front = pareto_front(points, metric="top1")
    rows = [[str(r.get("model")), str(_art(r).get("format")), str(_art(r).get("compression")),
             _f(r["latency"]["median_ms"]), _f(r["accuracy"]["value"])] for r in front]
    blocks: list[Any] = ["Measured on this machine: higher accuracy and lower p50 latency are better; the "
                         "highlighted line joins the configurations no other one beats on both."]
    if points:
        blocks.append(latency_accuracy_figure(points, front))
    blocks.append(Table("Pareto front (accuracy vs p50 latency)", ["model", "format", "compression", "p50 ms", "accuracy"], rows))
    return Section("Accuracy vs latency (Pareto front)", blocks)


def _parity(d: ReportData) -> Section:
    rows = [[str(r.get("model")), str(_art(r).get("format")), str(_art(r).get("compression")),
             _f(p.get("sqnr_db"), ".1f"), _f(p.get("max_abs_err"), ".2e"), _f(p.get("top1_agreement")),
             "yes" if p.get("ok") else "NO"] for r in d.records if (p := r.get("parity"))]
    return Section("Parity vs the torch fp32 reference", [
        Table("Parity", ["model", "format", "compression", "SQNR dB", "max abs err", "top-1 agreement", "ok"], rows)])


def _device_table(dev: Device) -> Table:
    units = {"peak.fp32": "FLOP/s", "peak.fp16": "FLOP/s", "peak.int8": "OP/s", "memory_bandwidth": "B/s",
             "memory_bytes": "B", "compute_units": ""}
    value = {"compute_units": lambda v: f"{v or '-'} {dev.compute_unit}", "memory_bytes": _size}
    rows = [[k, value.get(k, lambda v: _si(v, units[k]))(dev.figure(k)),
             dev.sources.get(k, "measured" if dev.kind == "host" and dev.figure(k) else "-"), dev.notes.get(k, "")]
            for k in FIGURES]
    return Table(f"{dev.title} ({dev.name}, {dev.kind})", ["figure", "value", "source", "note"], rows)


def _predictions(d: ReportData) -> Section:
    rows = [[str(p["model"]), str(p["format"]), str(p["compression"]), p["precision"], _si(p["flops"], "FLOP"),
             _si(p["bytes"], "B"), _f(p["intensity"], ".2f"), _f(p["predicted_ms"], ".4f"), p["bound"],
             p["precision_note"]] for p in d.predictions]
    return Section(f"Roofline predictions on {d.device.name} (predicted, not measured)", [
        _device_table(d.device),
        Table(f"Predicted latency on {d.device.name} (predicted, batch as measured)",
              ["model", "format", "compression", "precision", "FLOPs", "bytes", "FLOP/byte", "predicted ms",
               "bound", "note"], rows)])


def _by_runtime(rows: list[dict[str, Any]]) -> Table:
    out = []
    for rt in sorted({str(c["runtime"]) for c in rows}):
        sel = [c for c in rows if str(c["runtime"]) == rt]
        fractions = sorted(c["fraction_of_roofline"] for c in sel)
        out.append([rt, str(len(sel)), _f(roofline.median_abs_error(sel), ".1%"), f"{fractions[len(fractions) // 2]:.1%}"])
    return Table("Measured vs predicted by runtime (host)", ["runtime", "n", "median |error|",
                                                              "median fraction of roofline"], out)


def _comparison(d: ReportData) -> Section:
    rows = [[str(c["model"]), str(c["format"]), str(c["compression"]), str(c["runtime"]), str(c["threads"]),
             _f(c["measured_ms"], ".4f"), _f(c["predicted_ms"], ".4f"), f"{c['error']:+.1%}", _f(c["ratio"], ".1f"),
             f"{c['fraction_of_roofline']:.1%}", c["bound"]] for c in d.comparison]
    med = roofline.median_abs_error(d.comparison)
    blocks: list[Any] = [
        "error = (measured - predicted) / measured; ratio = measured / predicted; fraction of roofline bound = "
        "predicted / measured (1 = the runtime reaches the bound). A negative error means the run beat the DRAM "
        "roofline, e.g. because a small model stays in cache.",
        f"Median |error| over {len(d.comparison)} measurements: {_f(med, '.1%') if med is not None else '-'}."]
    blocks.append(_by_runtime(d.comparison))
    if d.comparison:
        blocks.append(measured_vs_predicted_figure(d.comparison))
    blocks.append(Table("Measured vs predicted on this machine (predicted from the measured host profile)",
                        ["model", "format", "compression", "runtime", "threads", "measured p50 ms", "predicted ms",
                         "error", "ratio", "fraction of roofline", "bound"], rows))
    return Section("Measured vs predicted on this machine (host)", blocks)


def _skipped_and_failures(d: ReportData) -> list[Section]:
    skipped = [[str(s.get("model")), str(s.get("format")), str(s.get("compression")), str(s.get("device")),
                s["reason"]] for s in d.skipped]
    bad = [[str(r.get("model")), str(_art(r).get("format")), str(_art(r).get("compression")), str(r.get("runtime")),
            r["status"], str(r.get("error_class") or ""), str(r.get("error_message") or "")]
           for r in d.records if r["status"] != "ok"]
    return [Section("Predictions skipped", [Table("Skipped predictions", ["model", "format", "compression", "device",
                                                                           "reason"], skipped)]),
            Section("Failures and unavailable runtimes", [Table("Failures", ["model", "format", "compression", "runtime",
                                                                             "status", "error", "message"], bad)])]


def _language_models(d: ReportData) -> list[Section]:
    rows = [[_art(r).get("format"), _art(r).get("compression"), r.get("runtime"), r["status"],
             _f((r.get("accuracy") or {}).get("value"), ".4f"), _f(r.get("ttft_s") and r["ttft_s"] * 1e3, ".1f"),
             _f(r.get("decode_tokens_per_s"), ".0f"), _size((r.get("memory") or {}).get("peak_rss_bytes")),
             _size(_art(r).get("size_bytes")), _f(_art(r).get("bits_per_weight"), ".2f")]
            for r in d.lm_records if (r.get("scenario") or {}).get("kind") == "lm-generate"]
    if not rows:
        return []
    headers = ["format", "compression", "runtime", "status", "val bits/byte", "TTFT ms", "decode tok/s", "peak RSS",
               "size", "bits/weight"]
    return [Section("Language models", ["Byte-level OpenELM on pydoc text (bits per byte: lower is better). "
                                        "Speculative-decoding records are on the dashboard's Language models page.",
                                        Table("LM artifacts", headers, rows)])]


def build_sections(d: ReportData) -> list[Section]:
    return [_environment(d), _methodology(d), _results(d), _pareto(d), _parity(d), _predictions(d), _comparison(d),
            *_language_models(d), *paper_sections(d.all_records, d.claims), *_skipped_and_failures(d)]


# ---------------------------------------------------------------- entry point


def check_outputs(outs: list[Path]) -> list[Path]:
    """Report paths the user named, checked before the store is read or the host measured: a known suffix, and
    not an existing folder (the CLI's --out callback also refuses a path under a file)."""
    for out in map(Path, outs):
        if out.suffix.lower() not in SUFFIXES:
            raise ReportError(f"cannot tell the report format of {out}", "name it FILE.html or FILE.md")
        if out.is_dir():
            raise ReportError(f"report path {out} is a folder", f"name a file in it, e.g. {out / 'report.html'}")
    return [Path(o) for o in outs]


def write_report(ws, device: str | None = None, outs: list[Path] | None = None) -> list[Path]:
    """Write the report for `device` (catalog name, or None/"host" for this machine); returns the written paths."""
    named = check_outputs(list(outs or []))
    data = collect(ws, device)
    paths = named or [ws.reports / f"report-{data.device.name}.html", ws.reports / f"report-{data.device.name}.md"]
    sections = build_sections(data)
    title = f"EdgeZoo device report: {data.device.title}"
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(SUFFIXES[path.suffix.lower()](title, sections), encoding="utf-8")
    return paths
