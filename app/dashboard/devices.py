"""Device catalog and roofline predictions for the Devices/Reports pages, tolerant of those modules being absent."""

from __future__ import annotations

import importlib
import importlib.util
import json
from typing import Any

import pandas as pd

from app.workspace import Workspace


def catalog() -> tuple[dict[str, Any], str | None]:
    """({name: Device}, None) or ({}, why the catalog cannot be shown)."""
    if importlib.util.find_spec("profiles.catalog") is None:
        return {}, "profiles/catalog.py is not in this EdgeZoo yet"
    try:
        return dict(importlib.import_module("profiles.catalog").load_devices()), None
    except Exception as e:  # noqa: BLE001 - an invalid device file is shown, not raised
        return {}, f"{e.__class__.__name__}: {e}"


def roofline() -> tuple[Any, str | None]:
    if importlib.util.find_spec("profiles.roofline") is None:
        return None, "profiles/roofline.py is not in this EdgeZoo yet"
    try:
        return importlib.import_module("profiles.roofline"), None
    except Exception as e:  # noqa: BLE001
        return None, f"{e.__class__.__name__}: {e}"


def _scaled(v: Any, unit: float) -> float | None:
    return None if v is None else v / unit


def catalog_table(devs: dict[str, Any]) -> pd.DataFrame:
    rows = [{"name": d.name, "title": d.title, "kind": d.kind, "vendor": d.vendor,
             "fp32 TFLOP/s": _scaled(d.peak.get("fp32"), 1e12), "fp16 TFLOP/s": _scaled(d.peak.get("fp16"), 1e12),
             "int8 TOP/s": _scaled(d.peak.get("int8"), 1e12), "bandwidth GB/s": _scaled(d.memory_bandwidth, 1e9),
             "memory GiB": _scaled(d.memory_bytes, 2**30),
             "compute units": f"{d.compute_units} {d.compute_unit}".strip() if d.compute_units else None}
            for d in devs.values()]
    return pd.DataFrame(rows)


def cached_hosts(ws: Workspace) -> dict[int, Any]:
    """{threads: host Device} from the host profiles `edgezoo report` measured and cached; never measures here."""
    from profiles.device import fingerprint
    from profiles.catalog import Device
    from profiles.hostbench import BENCH_VERSION, CACHE_FILE

    try:
        cache = json.loads((ws.root / CACHE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    prefix, suffix = f"{fingerprint()['id']}/threads=", f"/v{BENCH_VERSION}"
    return {int(k[len(prefix):-len(suffix)]): Device(**v) for k, v in cache.items()
            if k.startswith(prefix) and k.endswith(suffix)}


def predicted(rf: Any, device: Any, recs: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(predicted rows with the measured p50 beside them, skipped rows with the reason)."""
    rows, skipped = rf.predict_records(recs, device)
    measured = {r["id"]: ((r.get("latency") or {}).get("median_ms"), (r.get("device") or {}).get("name")) for r in recs}
    df = pd.DataFrame(rows)
    if not df.empty:
        df["measured_p50_ms"] = df["id"].map(lambda i: measured[i][0])
        df["measured_on"] = df["id"].map(lambda i: measured[i][1])
    return df, pd.DataFrame(skipped)


def versus_host(rf: Any, hosts: dict[int, Any], recs: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Measured p50 vs predicted for this machine, per thread count that has a cached host profile."""
    from profiles.device import fingerprint

    host_id, rows, skipped = fingerprint()["id"], [], []
    for threads, host in hosts.items():
        got, more = rf.compare_measured([r for r in recs if r.get("threads") == threads], host, host_id)
        rows += got
        skipped += more
    return pd.DataFrame(rows), pd.DataFrame(skipped)


def per_operator(recs: list[dict[str, Any]], scale: str | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Leave-one-architecture-out predictions of the per-operator model (profiles/latency_model.py) for this
    machine's ONNX records of `scale` (None: every scale): (rows, {"summary", "fit", "problem", "skipped"})."""
    from profiles import latency_model
    from profiles.device import fingerprint

    out = latency_model.evaluate_store(recs, fingerprint()["id"], scale=scale)
    df = pd.DataFrame(out.pop("rows"))
    if not df.empty:
        df["format"], df["abs_error"] = "onnx", df["error"].abs()
    return df, out


# ------------------------------------------------------------------------------------------------ fleet (Ray)

FLEET_HEAD = "fleet_head"  # session key of the fleet head's HOST:PORT, shared by the Devices and Run pages


def fleet_head(session: Any) -> str:
    """The fleet head this session looks at: set on the Devices page, else EDGEZOO_FLEET_ADDRESS, else none."""
    import os

    return str(session.get(FLEET_HEAD) or os.environ.get("EDGEZOO_FLEET_ADDRESS", "")).strip()


def fleet_devices(address: str) -> tuple[list[dict[str, Any]], str | None]:
    """(devices connected to the head now, None) or ([], why none can be listed); profiles.fleet does the work."""
    from models.errors import EdgeZooError

    try:
        from profiles import fleet

        return fleet.devices(address), None
    except EdgeZooError as e:
        return [], str(e)


def fleet_table(found: list[dict[str, Any]]) -> pd.DataFrame:
    cols = ["name", "address", "os", "machine", "chip", "cores", "memory-gib", "runtimes", "fingerprint", "node_id"]
    return pd.DataFrame([{c: d.get(c) for c in cols} for d in found], columns=cols)
