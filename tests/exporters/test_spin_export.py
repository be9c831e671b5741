"""SPIN exports keep the sharing: a shared depth-8 ConvMixer (4 unique pointwise weights) is smaller than the
unshared one at equal depth by 4 pointwise convs, in the manifest's size_bytes of every format."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from exporters.artifact import export_checkpoint
from models import checkpoint
from models.registry import build

DIM, DEPTH, SHARE = 64, 8, 4
PW_BYTES = (DIM * DIM + DIM) * 4  # one fp32 pointwise conv: weight + bias


def spin_checkpoint(root: Path, share: int) -> Path:
    """A depth-8 SPIN ConvMixer with random (distinct, nonzero) weights, saved as a checkpoint."""
    torch.manual_seed(0)
    model = build("spin_convmixer", {"dim": DIM, "depth": DEPTH, "share": share})
    with torch.no_grad():
        for conv in model.pointwise:
            conv.bias.normal_()
    return checkpoint.save(model.eval(), root / f"share{share}", {"dataset": "digits"})


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("spin")
    return {"shared": spin_checkpoint(root, SHARE), "unshared": spin_checkpoint(root, 0)}


@pytest.mark.parametrize("fmt", ["onnx", "mlx", "coreml"])
def test_shared_artifact_stores_each_pointwise_weight_once(fmt: str, checkpoints, tmp_path) -> None:
    arts = {k: export_checkpoint(ck, fmt, "none", out_dir=tmp_path / k) for k, ck in checkpoints.items()}
    sizes = {k: a.manifest["size_bytes"] for k, a in arts.items()}
    weights = {k: a.manifest["weight_bytes"] for k, a in arts.items()}
    expected = (DEPTH - SHARE) * PW_BYTES  # 66,560 bytes
    # parameter bytes: exactly 4 pointwise convs fewer (Core ML adds a 64-byte blob header per tensor)
    assert expected <= weights["unshared"] - weights["shared"] <= expected + 2 * (DEPTH - SHARE) * 64, (fmt, weights)
    # the whole file: the same saving plus a little less graph metadata (ONNX: the 4 initializers' names)
    assert 0.97 * expected <= sizes["unshared"] - sizes["shared"] <= 1.06 * expected, (fmt, sizes, expected)
    if fmt == "onnx":
        onnx_initializers_shared(arts["shared"].model_file)
    if fmt != "coreml":  # Core ML cannot run on Linux: structural checks only
        assert arts["shared"].manifest["verification"]["max_abs_err"] < 1e-3


def onnx_initializers_shared(path: Path) -> None:
    """One initializer per unique pointwise weight, each read by r = depth / share Conv nodes."""
    import onnx

    graph = onnx.load(str(path)).graph
    pw = [t for t in graph.initializer if list(t.dims) == [DIM, DIM, 1, 1]]
    assert len(pw) == SHARE
    users = {t.name: sum(t.name in n.input for n in graph.node) for t in pw}
    assert sorted(users.values()) == [DEPTH // SHARE] * SHARE


def test_shared_weights_quantize_once_to_onnx_int4(checkpoints, tmp_path) -> None:
    """A weight read by several layers is quantized once and stays shared (it used to fail: removed twice)."""
    import onnx

    art = export_checkpoint(checkpoints["shared"], "onnx", "int4", out_dir=tmp_path / "q")
    graph = onnx.load(str(art.model_file)).graph
    q4 = [t for t in graph.initializer if t.name.endswith("_q4") and list(t.dims) == [DIM, DIM]]
    assert len(q4) == SHARE
    assert art.manifest["verification"]["ok"], art.manifest["verification"]
