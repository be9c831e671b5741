"""`edgezoo reproduce datafree`: card 15's small-scale claim on digits (test accuracy, mean over seeds).

Per seed one BatchNorm CNN (lcs_cnn, 3 x conv-BN-ReLU, global pooling, linear) is trained with the one training loop
on the standard digits split; every conv/linear weight is then quantized per output channel at 2/3/4/8 bits
(first and last layer included) by (a) round-to-nearest (models/layers/quant.py), (b) layer-wise reconstruction on
inputs synthesised from BatchNorm statistics, (c) the same reconstruction on the float network's real activations
for 1,024 training images (the upper bound). Pruning: global magnitude masks at 70/80/90 % with and without the
layer-wise refit on synthetic inputs. Layer jobs run in parallel worker processes; one seed also runs them
sequentially and in parallel to record both wall-clocks.
"""

from __future__ import annotations

import copy
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainers.claims import ClaimResult, combine, compare, seed_summary

PAPER = {"mobilenetv2_imagenet": "better than earlier data-free quantization at every bit width: +0.34 % at 8 bits, "
                                 "up to +28.50 % at 5 bits",
         "pruning": "1.5x the sparsity at equal accuracy versus baselines of similar compute",
         "compute": "orders of magnitude less compute and memory than generative data-free methods"}
CLAIM = ("layer-wise reconstruction on BatchNorm-synthesised inputs beats round-to-nearest at 2 and 3 bits, stays "
         "within 3 points of real-data reconstruction at 3 and 4 bits, all arms within 0.5 points of float at 8 bits, "
         "and a layer-wise refit beats plain magnitude pruning at 90 % sparsity")
REAL_IMAGES = 1024


def settings(quick: bool) -> dict[str, Any]:
    if quick:  # a labelled smoke test: tiny network, few steps
        return {"epochs": 3, "channels": [8, 16, 16], "bits": (2, 3, 4, 8), "sparsities": (0.9,), "samples": 128,
                "steps": 10, "workers": 1}
    return {"epochs": 30, "channels": [16, 32, 48], "bits": (2, 3, 4, 8), "sparsities": (0.7, 0.8, 0.9),
            "samples": 1024, "steps": 300, "workers": 2}


def pretrain(seed: int, s: dict[str, Any], out: Path) -> torch.nn.Module:
    from models import checkpoint
    from trainers.loop import train
    from trainers.recipe import recipe_from_dict

    recipe = recipe_from_dict({"name": f"datafree_s{seed}", "model": "lcs_cnn", "epochs": s["epochs"], "seed": seed,
                               "model_args": {"channels": s["channels"], "norm": "batch"}, "threads": 1})
    train(recipe, out, progress=False)
    return checkpoint.load(out)[0].eval()


def _accuracy(model: torch.nn.Module, data) -> float:
    from trainers.loop import evaluate

    return evaluate(model, data.test.x, data.test.y)["accuracy"]


def _real_images(data, seed: int) -> torch.Tensor:
    idx = np.random.default_rng(seed).permutation(len(data.train.y))[:REAL_IMAGES]
    return torch.from_numpy(data.train.x[np.sort(idx)])


def run_seed(seed: int, s: dict[str, Any], data, timing: bool) -> dict[str, Any]:
    """Accuracy of every arm for one pretrained network, per-layer MSE and seconds, and (with `timing`) the
    sequential vs parallel wall-clock of one 3-bit data-free run."""
    from exporters.compression.datafree import real_inputs, reconstruct_, synthetic_inputs
    from exporters.compression.torch_level import fake_quantize_, prune_
    from models.registry import example_inputs

    with tempfile.TemporaryDirectory(prefix="edgezoo-datafree-") as tmp:
        model = pretrain(seed, s, Path(tmp) / "ckpt")
    syn, _ = synthetic_inputs(model, example_inputs(model, 1)[0], s["samples"], seed)
    real = real_inputs(model, _real_images(data, seed))
    out: dict[str, Any] = {"float": _accuracy(model, data), "layers": {}}

    def arm(inputs, bits: int, sparsity: float = 0.0, workers: int = s["workers"]) -> tuple[float, dict[str, Any]]:
        m = copy.deepcopy(model)
        rep = reconstruct_(m, inputs, bits, sparsity, s["steps"], workers, seed)
        return _accuracy(m, data), rep

    for bits in s["bits"]:
        rtn = copy.deepcopy(model)
        fake_quantize_(rtn, bits, 0)  # the one RTN, per output channel
        out[f"rtn@{bits}"] = _accuracy(rtn, data)
        out[f"datafree@{bits}"], rep = arm(syn, bits)
        out[f"real@{bits}"], rep_real = arm(real, bits)
        out["layers"][bits] = {"datafree": rep["layers"], "real": rep_real["layers"]}
        out[f"sec_per_layer@{bits}"] = statistics.fmean(v["seconds"] for v in rep["layers"].values())
    for sp in s["sparsities"]:
        pruned = copy.deepcopy(model)
        prune_(pruned, sp)  # the same global magnitude masks the refit keeps
        out[f"prune@{sp:g}"] = _accuracy(pruned, data)
        out[f"prune_refit@{sp:g}"], _ = arm(syn, 32, sp)
    if timing:
        _, seq = arm(syn, 3, workers=1)
        _, par = arm(syn, 3, workers=2)
        out.update(wall_sequential=seq["wall_seconds"], wall_parallel=par["wall_seconds"],
                   parallel_workers=par["workers"])
    return out


def verdict(measured: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """The card's four pass conditions on seed summaries (as built by `reproduce`)."""
    checks = {}
    for b in (2, 3):
        checks[f"1 datafree > RTN @{b} bits"] = compare(measured[f"datafree@{b}"], measured[f"rtn@{b}"])
    for b in (3, 4):
        checks[f"2 datafree >= real - 3 pts @{b} bits"] = compare(measured[f"datafree@{b}"], measured[f"real@{b}"],
                                                                   margin=-0.03)
    for a in ("rtn", "datafree", "real"):  # a tolerance, not a ranking: no inconclusive
        low = compare(measured[f"{a}@8"], measured["float"], allow_inconclusive=False, margin=-0.005)
        high = compare(measured["float"], measured[f"{a}@8"], allow_inconclusive=False, margin=-0.005)
        checks[f"3 {a} @8 bits within 0.5 pts of float"] = combine((low, high))
    if "prune@0.9" in measured:
        checks["4 refit > no refit @90 %"] = compare(measured["prune_refit@0.9"], measured["prune@0.9"])
    nums = ", ".join(f"{k}={measured[k]['mean']:.4f}" for k in measured if k.startswith(("rtn@", "datafree@", "real@",
                                                                                              "prune")))
    return combine(checks.values()), "; ".join(f"{k}: {v}" for k, v in checks.items()) + \
        f" (float={measured['float']['mean']:.4f}, {nums})"


def summarise(per_seed: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    keys = [k for k in per_seed[0] if k not in ("layers", "parallel_workers")]
    measured = {k: seed_summary([p[k] for p in per_seed if k in p]) for k in keys}
    for bits, layers in per_seed[0]["layers"].items():  # per-layer MSE and time, mean over seeds
        for name in layers["datafree"]:
            for arm in ("datafree", "real"):
                measured[f"mse_{arm}@{bits}:{name}"] = seed_summary(
                    [p["layers"][bits][arm][name]["mse"] for p in per_seed])
            measured[f"mse_rtn@{bits}:{name}"] = seed_summary(
                [p["layers"][bits]["datafree"][name]["mse_rtn"] for p in per_seed])
            measured[f"sec@{bits}:{name}"] = seed_summary(
                [p["layers"][bits]["datafree"][name]["seconds"] for p in per_seed])
    return measured


def reproduce(quick: bool = False, seeds: list[int] | None = None) -> ClaimResult:
    from trainers.data import load_dataset

    torch.set_num_threads(1)
    seeds = seeds or ([0] if quick else [0, 1, 2])
    s = settings(quick)
    data = load_dataset("digits")
    per_seed = [run_seed(seed, s, data, timing=i == 0) for i, seed in enumerate(seeds)]
    measured = summarise(per_seed)
    outcome, reason = verdict(measured)
    return ClaimResult(paper="datafree", claim=CLAIM, paper_numbers=PAPER, measured=measured, verdict=outcome,
                       reason=reason, quick=quick, seeds=list(seeds))
