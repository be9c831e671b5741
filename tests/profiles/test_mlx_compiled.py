"""MLX runtime: the imported function is profiled compiled (`mx.compile`) by default, eagerly with compile=false;
both give the same outputs, and the option is recorded with the scenario (and makes its own cache key)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from exporters.artifact import export_checkpoint
from exporters.compression.spec import parse_spec
from exporters.formats import MODEL_FILES
from exporters.mlx import export
from models import registry
from models.errors import EdgeZooError
from profiles.measure import Scenario, measure, request_key
from profiles.runtimes import check_options
from profiles.runtimes.mlx_rt import MlxRuntime

QUICK = Scenario(warmup=2, min_iters=30, min_seconds=0.05, max_seconds=3.0)


def _randomized(name: str) -> torch.nn.Module:
    """A tiny model with non-trivial batch-norm statistics (eval mode), so that fusion could show in the outputs."""
    torch.manual_seed(0)
    model = registry.build(name, registry.get(name).args_cls.tiny()).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
    return model


@pytest.mark.parametrize("name,compression", [("mobilenetv2", "none"), ("convmixer", "int4")])
def test_compiled_and_eager_outputs_agree(tmp_path, name: str, compression: str) -> None:
    model = _randomized(name)
    x = torch.randn(4, 1, 8, 8)
    export(model, (x[:1],), tmp_path, parse_spec(compression))
    outs = {}
    for flag in ("true", "false"):
        rt = MlxRuntime()
        rt.load(tmp_path / MODEL_FILES["mlx"], 1, {"compile": flag})
        assert rt.options()["compiled"] is (flag == "true")
        outs[flag] = [rt.run([x.numpy()])[0] for _ in range(2)]  # the second call runs the cached compiled graph
    np.testing.assert_allclose(outs["true"][0], outs["true"][1], rtol=0, atol=0)
    np.testing.assert_allclose(outs["true"][1], outs["false"][1], rtol=1e-5, atol=1e-5)
    assert np.abs(outs["false"][1]).max() > 1e-3  # a real output, not zeros


def test_compile_option_is_checked() -> None:
    assert check_options("mlx", {"compile": "false"}) == {"compile": "false"}
    with pytest.raises(EdgeZooError, match=r"compile='yes' is not accepted -> use one of true, false"):
        check_options("mlx", {"compile": "yes"})


def test_compiled_by_default_and_eager_as_a_scenario(tiny_checkpoint, tmp_path) -> None:
    art = export_checkpoint(tiny_checkpoint, "mlx", "none", out_dir=tmp_path / "mlx")
    assert request_key(art, "mlx", 1, QUICK, {}) == request_key(art, "mlx", 1, QUICK, {"compile": "true"})
    assert request_key(art, "mlx", 1, QUICK, {}) != request_key(art, "mlx", 1, QUICK, {"compile": "false"})
    default, eager = (measure(art, "mlx", 1, scenario=QUICK, options=o) for o in ({}, {"compile": "false"}))
    assert default["status"] == eager["status"] == "ok", (default, eager)
    assert default["scenario"]["runtime_options"] == {"compile": "true"} and default["runtime_options"]["compiled"]
    assert eager["scenario"]["runtime_options"] == {"compile": "false"} and not eager["runtime_options"]["compiled"]
    assert default["accuracy"]["value"] == eager["accuracy"]["value"]
    assert default["parity"]["top1_agreement"] == eager["parity"]["top1_agreement"] == 1.0
