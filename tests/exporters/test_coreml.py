"""Core ML export: every model converts; every compression lands in the file as the compressed MIL ops.

On Linux verification is structural (Core ML cannot predict here); the numeric parity test runs on macOS only.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from exporters.artifact import Artifact, export_checkpoint

SPECS = ("none", "fp16", "int8", "int4", "prune50", "palette4")
FULL = "resnet"  # every compression for this model, `none` for the others (conversion ~1 s each)
COMPRESSED_OPS = {
    "int8": "constexpr_blockwise_shift_scale",
    "int4": "constexpr_blockwise_shift_scale",
    "prune50": "constexpr_sparse_to_dense",
    "palette4": "constexpr_lut_to_dense",
}
PAYLOAD = {"int8": "INT8", "int4": "INT4", "prune50": "UINT1", "palette4": "UINT4"}


@pytest.fixture(scope="module")
def coreml_artifacts(tiny_checkpoints: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
                     ) -> dict[tuple[str, str], Artifact]:
    root = tmp_path_factory.mktemp("coreml")
    out = {}
    for name, ckpt in tiny_checkpoints.items():
        for spec in SPECS if name == FULL else ("none",):
            out[name, spec] = export_checkpoint(ckpt, "coreml", spec, out_dir=root / f"{name}-{spec}")
    return out


def test_every_model_exports_and_verifies(coreml_artifacts, tiny_checkpoints):
    for name in tiny_checkpoints:
        art = coreml_artifacts[name, "none"]
        m = art.manifest
        assert art.model_file.name == "model.mlpackage" and art.model_file.is_dir()
        assert m["format"] == "coreml" and m["model"] == name
        v = m["verification"]
        assert v["ok"], v["problems"]
        assert v["kind"] == ("numeric+structural" if sys.platform == "darwin" else "structural")
        assert v["ops"].get("conv", 0) >= 1
        assert v["compressed_ops"] == 0 and not any(op.startswith("constexpr_") for op in v["ops"])
        assert v["weight_bin_bytes"] > 0 and m["weight_bytes"] >= v["weight_bin_bytes"]
        assert m["export_details"]["deployment_target"].startswith("iOS18")
        assert m["inputs"][0]["name"] == "input"
        dynamic = m["export_details"]["dynamic_batch"]
        assert m["inputs"][0]["shape"][0] == (None if dynamic else 1)
        assert v["inputs"][0]["shape"][0] == (None if dynamic else 1)  # what the package itself declares
        assert [o["name"] for o in v["outputs"]] == ["logits"]


@pytest.mark.parametrize("spec", SPECS)
def test_compression_is_in_the_file(coreml_artifacts, spec):
    art = coreml_artifacts[FULL, spec]
    v, details = art.manifest["verification"], art.manifest["export_details"]
    assert v["ok"], v["problems"]
    assert details["weight_threshold"] == 0
    if spec in COMPRESSED_OPS:
        assert v["ops"].get(COMPRESSED_OPS[spec], 0) == v["compressed_ops"] > 0
        assert PAYLOAD[spec] in v["payload_dtypes"]
    if spec in ("int8", "int4", "palette4"):
        # every conv/linear weight is stored compressed (weight_threshold=0: none skipped for being small)
        assert v["compressed_ops"] == v["weight_layers"] and v["uncompressed_weight_layers"] == []
        assert details["converter_warnings"] == []
    if spec == "prune50":
        # the file stores the torch-level (global) zeros, no more: a tensor stays dense only under 1/32 zeros
        assert v["compressed_ops"] + len(v["uncompressed_weight_layers"]) == v["weight_layers"]
        torch_zeros = art.manifest["sparsity"] * art.manifest["n_weights"]
        assert 0 < v["stored_zeros"] <= torch_zeros + 0.5
        if not v["uncompressed_weight_layers"]:
            assert v["stored_zeros"] == pytest.approx(torch_zeros, abs=0.5)
    if spec == "fp16":
        assert details["compute_precision"] == "FLOAT16" and "cast" in v["ops"]
    if spec == "int4":
        assert details["block_requested"] == 32
        # layers with < 32 input channels fall back to one block of all of them (per output channel)
        assert all(b["block"] <= 32 and b["shape"][1] % b["block"] == 0 for b in details["blocks"].values())


def test_compressed_files_are_smaller(coreml_artifacts):
    size = {s: coreml_artifacts[FULL, s].manifest["weight_bytes"] for s in SPECS}
    wbin = {s: coreml_artifacts[FULL, s].manifest["verification"]["weight_bin_bytes"] for s in SPECS}
    for s in ("fp16", "int8", "int4", "palette4", "prune50"):
        assert size[s] < size["none"], (s, size)
        assert wbin[s] < wbin["none"], (s, wbin)
    assert size["int4"] < size["int8"] < size["fp16"], size
    assert coreml_artifacts[FULL, "prune50"].manifest["sparsity"] == pytest.approx(0.5, abs=0.02)


def test_effective_block():
    from exporters.coreml import effective_block

    assert effective_block(64, 32) == 32
    assert effective_block(8, 32) == 8      # fewer input channels than the block: per output channel
    assert effective_block(1, 32) == 1      # depthwise
    assert effective_block(48, 32) == 24    # largest divisor below the block


def test_coreml_runtime_unavailable_off_macos(coreml_artifacts):
    if sys.platform == "darwin":
        pytest.skip("Core ML is available on macOS")
    from profiles.runtimes import resolve
    from profiles.runtimes.base import RuntimeUnavailable
    from profiles.runtimes.coreml_rt import CoreMLRuntime

    assert resolve("coreml") is CoreMLRuntime and CoreMLRuntime.name == "coreml"
    assert CoreMLRuntime.version()[0].isdigit()
    with pytest.raises(RuntimeUnavailable, match="only on macOS"):
        CoreMLRuntime().load(coreml_artifacts[FULL, "none"].model_file, 1, {})


@pytest.mark.macos
@pytest.mark.skipif(sys.platform != "darwin", reason="Core ML predicts only on macOS")
@pytest.mark.parametrize("spec", SPECS)
def test_numeric_parity_on_macos(coreml_artifacts, spec):
    from profiles.runtimes.coreml_rt import CoreMLRuntime

    art = coreml_artifacts[FULL, spec]
    v = art.manifest["verification"]
    assert v["kind"] == "numeric+structural"
    assert v["ok"], v
    assert v["top1_agreement"] >= (0.99 if spec in ("none", "fp16") else 0.8)
    if spec == "none":
        assert v["max_abs_err"] < 1e-3
    rt = CoreMLRuntime()
    rt.load(art.model_file, 1, {"compute_units": "CPU_ONLY"})
    data = np.load(art.path / "eval.npz")
    x = data["x"][:1]
    (out,) = rt.run([x])
    assert out.shape == data["reference"][:1].shape
    assert rt.input_specs()[0]["name"] == "input"
