"""MLX export: the torch.export graph translated op by op into an .mlxfn that runs without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
import torch
from torch import nn

import models
from exporters import mlx as mlx_exporter
from exporters.artifact import Artifact, export_checkpoint
from exporters.compression import compress_, parse_spec
from exporters.verify import numeric_parity
from models.errors import ConversionError
from models.registry import example_inputs, exportable
from tests.conftest import tiny_dataset, tiny_input
from trainers.data import load_dataset

ROOT = Path(__file__).resolve().parents[2]
SPECS = ("none", "fp16", "int8", "int4", "prune50")
FULL = "resnet"  # every compression for this model, `none` for the others


@pytest.fixture(scope="module")
def mlx_artifacts(tiny_checkpoints: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
                  ) -> dict[tuple[str, str], Artifact]:
    root = tmp_path_factory.mktemp("mlx")
    return {(name, spec): export_checkpoint(ckpt, "mlx", spec, out_dir=root / f"{name}-{spec}")
            for name, ckpt in tiny_checkpoints.items() for spec in (SPECS if name == FULL else ("none",))}


def test_every_model_exports_and_matches_torch(mlx_artifacts, tiny_checkpoints) -> None:
    assert set(tiny_checkpoints) == set(models.names())
    for name in tiny_checkpoints:
        m = mlx_artifacts[name, "none"].manifest
        v = m["verification"]
        assert v["kind"] == "numeric" and v["ok"] and v["max_abs_err"] < 1e-3 and v["sqnr_db"] > 60, (name, v)
        channels, size = tiny_input(name)
        held_out = load_dataset(tiny_dataset(name)).test  # the held-out split of the model's training data
        assert v["n"] == len(held_out.y) and m["model_file"] == "model.mlxfn"
        assert m["export_details"]["dynamic_batch"] and m["inputs"][0]["shape"] == [None, channels, size, size]
        assert m["weight_bytes"] == 4 * sum(np.prod(a.shape) for a in _stored(mlx_artifacts[name, "none"]))


def _stored(art: Artifact) -> list[np.ndarray]:
    """The fp32 state the exported model needs (parameters and running statistics, not step counters)."""
    from models import checkpoint

    model, _ = checkpoint.load(Path(art.manifest["checkpoint"]))
    return [t.numpy() for k, t in exportable(model).state_dict().items() if t.is_floating_point()]


def test_compressions_verify_and_shrink(mlx_artifacts) -> None:
    arts = {spec: mlx_artifacts[FULL, spec] for spec in SPECS}
    for spec, art in arts.items():  # the reference is the torch model after torch-level compression
        assert art.manifest["verification"]["ok"], (spec, art.manifest["verification"])
    size = {k: a.manifest["size_bytes"] for k, a in arts.items()}
    weights = {k: a.manifest["weight_bytes"] for k, a in arts.items()}
    assert size["int8"] < size["none"] and size["int4"] < size["none"] and size["fp16"] < size["none"]
    assert weights["int4"] < weights["int8"] < weights["fp16"] * 1.1 and weights["fp16"] * 2 == weights["none"]
    details = arts["int4"].manifest["export_details"]
    assert details["group_size"] == 32 and details["quantized_tensors"] > 0 and details["stored_dtypes"]["uint32"] == 1
    assert arts["int8"].manifest["export_details"]["group_size"] in mlx_exporter.GROUP_SIZES
    assert abs(arts["prune50"].manifest["sparsity"] - 0.5) < 0.01


def test_int_files_smaller_at_full_size(tmp_path) -> None:
    """At the models' default sizes the weights outweigh the graph: int8 and int4 files are smaller on disk."""
    for name in models.names():
        torch.manual_seed(0)  # per model: registering another model must not change this one's weights
        model = models.build(name).eval()
        x = torch.rand(16, *example_inputs(model, 1)[0].shape[1:])
        ref = model(x).detach().numpy()
        size = {}
        for spec in ("none", "int8", "int4"):
            out = tmp_path / f"{name}-{spec}"
            out.mkdir()
            info = mlx_exporter.export(model, example_inputs(model, 1), out, parse_spec(spec, "mlx"))
            size[spec] = (out / "model.mlxfn").stat().st_size
            assert info["weight_bytes"] + info["graph_bytes"] == size[spec]
            y = mlx_exporter.run_function(mx.import_function(str(out / "model.mlxfn")), x.numpy(), True)
            # random-init models: group-32 int8 gives 35-45 dB here depending on the init, int4 15-25 dB
            assert numeric_parity(y, ref)["sqnr_db"] > {"none": 100, "int8": 30, "int4": 15}[spec], (name, spec)
        assert size["int4"] < size["int8"] < size["none"], (name, size)


def test_pruned_weights_match_torch(tmp_path) -> None:
    model = compress_(models.build("convmixer").eval(), parse_spec("prune:sparsity=0.5,finetune=0"))
    x = torch.rand(8, 1, 8, 8)
    info = mlx_exporter.export(model, example_inputs(model, 1), tmp_path, parse_spec("prune:sparsity=0.5,finetune=0"))
    y = mlx_exporter.run_function(mx.import_function(str(tmp_path / "model.mlxfn")), x.numpy(), True)
    assert numeric_parity(y, model(x).detach().numpy())["max_abs_err"] < 1e-4 and "dense" in info["storage"]


class Sort(nn.Module):
    def forward(self, x):
        return torch.sort(x, dim=-1).values


class WidePool(nn.Module):
    def forward(self, x):
        return nn.functional.adaptive_avg_pool2d(x, 2)


def test_unsupported_op_is_named(tmp_path) -> None:
    with pytest.raises(ConversionError, match=r"aten\.sort\.default") as err:
        mlx_exporter.export(Sort(), (torch.randn(2, 8),), tmp_path, parse_spec("none"))
    assert "->" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConversionError, match="adaptive_avg_pool2d to \\(2, 2\\)"):
        mlx_exporter.export(WidePool(), (torch.randn(1, 3, 4, 4),), tmp_path, parse_spec("none"))


def test_block_mlx_cannot_quantize_is_refused(tmp_path) -> None:
    model = models.build("resnet", models.get("resnet").args_cls.tiny()).eval()
    with pytest.raises(ConversionError, match="block=16"):
        mlx_exporter.export(model, example_inputs(model, 1), tmp_path, parse_spec("int4:block=16", "mlx"))


def test_fixed_batch_fallback(tiny_checkpoints, tmp_path, monkeypatch) -> None:
    """When the shapeless trace does not check out, the file takes batch 1 and says so."""
    monkeypatch.setattr(mlx_exporter, "_batch_consistent", lambda path, example: False)
    art = export_checkpoint(tiny_checkpoints["resnet"], "mlx", "none", out_dir=tmp_path / "fixed")
    assert art.manifest["export_details"]["dynamic_batch"] is False
    assert art.manifest["inputs"][0]["shape"] == [1, 1, 8, 8]
    assert art.manifest["verification"]["ok"] and art.manifest["verification"]["max_abs_err"] < 1e-3
    from profiles.runtimes.mlx_rt import MlxRuntime

    rt = MlxRuntime()
    rt.load(art.model_file, 1, {})
    assert rt.fixed_batch == 1 and rt.input_specs()[0]["shape"] == [1, 1, 8, 8]


CHILD = """
import json, sys
import numpy as np
from profiles.runtimes.mlx_rt import MlxRuntime
folder = sys.argv[1]
rt = MlxRuntime()
rt.load(folder + "/model.mlxfn", 1, {})
data = np.load(folder + "/eval.npz")
out = np.concatenate([rt.run([data["x"][i:i + 100]])[0] for i in range(0, len(data["x"]), 100)])
print(json.dumps({"torch": "torch" in sys.modules, "max_err": float(np.abs(out - data["reference"]).max()),
                  "fixed_batch": rt.fixed_batch, "inputs": rt.input_specs(), "options": rt.options(),
                  "version": MlxRuntime.version()}))
"""


def test_runtime_runs_without_torch(mlx_artifacts) -> None:
    art = mlx_artifacts["mobilenetv2", "none"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(art.path)], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["torch"] is False
    assert result["max_err"] < 1e-3 and result["fixed_batch"] is None
    assert result["inputs"][0]["shape"] == [None, 1, 8, 8] and result["options"]["device"].startswith("Device(cpu")
    assert result["version"] == mx.__version__
