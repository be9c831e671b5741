"""Leave-one-architecture-out table of the per-operator latency model (profiles/latency_model.py) on this machine's
ONNX measurements: each deployment-scale artifact predicted by a fit on every other architecture's records (both
scales), beside its measured median, and the fraction within +-10 % (target >= 90 %) with the median |error|.

Measure first (`edgezoo run --scale deploy -f onnx --workspace WS`), then
`EDGEZOO_WORKSPACE=WS python -m pytest -m benchmark -s tests/benchmarks/test_latency_model.py`
or `python -m tests.benchmarks.test_latency_model WS[:WS2...] [small|deploy|all]` (several workspaces: their
records pooled).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.benchmark


def table(workspaces: list[Path], scale: str | None = "deploy") -> dict[str, Any]:
    from app.workspace import Workspace
    from profiles import latency_model
    from profiles.device import fingerprint
    from profiles.query import records

    recs = []
    for i, workspace in enumerate(workspaces):
        store = Workspace.resolve(workspace).store()
        try:  # ids made distinct across stores: the newest-per-artifact query orders by id
            recs += [{**r, "id": r["id"] + i * 10**9} for r in records(store)]
        finally:
            store.close()
    return latency_model.evaluate_store(recs, fingerprint()["id"], scale=scale)


def render(out: dict[str, Any]) -> str:
    lines = [f"{'architecture':<18}{'compression':<14}{'scale':<8}{'measured ms':>12}{'predicted ms':>14}{'error':>9}"]
    for r in sorted(out["rows"], key=lambda r: (r["arch"], r["compression"] or "")):
        lines.append(f"{r['arch']:<18}{str(r['compression']):<14}{r['scale']:<8}{r['measured_ms']:>12.3f}"
                     f"{r['predicted_ms']:>14.3f}{100 * r['error']:>8.1f}%")
    s = out["summary"]
    if s["n"]:
        lines.append(f"within +-{s['tolerance']:.0%}: {s['within']:.0%} of {s['n']} (target >= 90 %); "
                     f"median |error| {s['median_abs_error']:.1%}")
    else:
        lines.append(f"nothing predicted: {out['problem']}")
    lines += [f"  {k}: {v:.4g}" for k, v in sorted(out["fit"].items())]
    return "\n".join(lines)


def test_leave_one_architecture_out_table() -> None:
    found = [Path(p) for p in os.environ.get("EDGEZOO_WORKSPACE", "").split(":") if p]
    if not found or not all((p / "results.db").exists() for p in found):
        pytest.skip("set EDGEZOO_WORKSPACE to a workspace with deploy-scale ONNX measurements")
    out = table(found)
    print("\n" + render(out))
    assert out["rows"] or out["problem"]


if __name__ == "__main__":
    scale = sys.argv[2] if len(sys.argv) > 2 else "deploy"
    print(render(table([Path(p) for p in sys.argv[1].split(":")], None if scale == "all" else scale)))
