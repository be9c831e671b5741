"""`datafree:bits=B[,sparsity=S]`: layer-wise data-free compression (Horton et al., arXiv 2011.09058, card 15).

Every conv/linear layer is compressed on its own, on inputs synthesised from the network itself, no real data:
the model is traced (torch.fx) and run on a prior input (uniform [0, 1], the pixel range of the digits models)
with every BatchNorm's output replaced by fresh samples z_c ~ N(beta_c, gamma_c^2); what reaches a layer through
the ops in between (ReLU, pooling, flatten, residual additions) is that layer's training input. Each layer job then
minimises E ||f(a; Q(W~)) - f(a; W)||^2 with Adam (straight-through round-to-nearest per output channel, the one
RTN of models/layers/quant.py; pruning keeps a fixed global-magnitude mask), and learns a per-channel offset that is
folded into the next BatchNorm (or the layer's own bias). Layer jobs are independent, so they run in worker
processes (ProcessPoolExecutor, fork where available, capped at the core count); results do not depend on the worker count.

The stored weights are exactly on a symmetric per-channel grid (scale max|w| / (2^(B-1) - 1)), so each format's own
per-channel quantizer re-finds the same codes; `reconstruct_` with real activations (`real_inputs`) is the
data-using upper bound of the claim. Not implemented: the paper's preconditioning step (its mechanism is not
published) and generative (ZeroQ-style) input synthesis.
"""

from __future__ import annotations

import copy
import hashlib
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import fx, nn
from torch.nn import functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from models.errors import CompressionSpecError
from models.layers.quant import encode, qrange

SAMPLES = 1024      # synthetic inputs per layer (card 15, section 5)
STEPS = 300         # Adam steps per layer
BATCH = 256         # synthetic inputs per step, drawn from the layer's SAMPLES
CHECK_EVERY = 25    # steps between checks of the full-set error (the best point is kept)
LR = 1e-2           # Adam learning rate, as a fraction of the layer's mean |w|
SEED = 0
PRIOR = (0.0, 1.0)  # first-layer input prior: uniform over the pixel range
COMPRESSIBLE = (nn.Conv2d, nn.Linear)
_CACHE: dict[str, tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, torch.Tensor]]] = {}


@dataclass
class LayerResult:
    name: str
    weight: torch.Tensor
    bias: torch.Tensor | None
    offset: torch.Tensor | None   # per-output-channel shift folded into the following BatchNorm
    scale: torch.Tensor | None    # learned per-output-channel quantization step (weight = scale * integer code)
    mse_rtn: float                # normalised output MSE at the start: RTN (max scaling), or the plain mask
    mse: float                    # after
    seconds: float


# --- synthetic and real layer inputs ------------------------------------------------------------------------------

class _Synthesizer(fx.Interpreter):
    """Runs the traced model with every BatchNorm output replaced by N(beta, gamma^2) samples; records the input of
    each conv/linear and which sources (BatchNorms, the prior) it came from."""

    def __init__(self, gm: fx.GraphModule, gen: torch.Generator) -> None:
        super().__init__(gm)
        self.gen = gen
        self.inputs: dict[str, torch.Tensor] = {}
        self._src: dict[str, set[str]] = {}

    def run_node(self, n: fx.Node) -> Any:
        ups = set().union(*(self._src.get(a.name, set()) for a in n.all_input_nodes)) if n.all_input_nodes else set()
        out = super().run_node(n)
        if n.op == "placeholder":
            ups = {"prior"}
        elif n.op == "call_module" and isinstance(self.module.get_submodule(n.target), _BatchNorm):
            ups = {str(n.target)}
        self._src[n.name] = ups
        return out

    def call_module(self, target: str, args: tuple, kwargs: dict) -> Any:
        mod = self.module.get_submodule(target)
        if isinstance(mod, _BatchNorm):
            x = args[0]
            shape = (1, -1) + (1,) * (x.dim() - 2)
            gamma = mod.weight.detach() if mod.weight is not None else torch.ones(x.shape[1])
            beta = mod.bias.detach() if mod.bias is not None else torch.zeros(x.shape[1])
            z = torch.randn(x.shape, generator=self.gen)
            return beta.reshape(shape) + gamma.abs().reshape(shape) * z
        if isinstance(mod, COMPRESSIBLE) and target not in self.inputs:
            self.inputs[target] = args[0].detach().clone()
        return super().call_module(target, args, kwargs)


def _trace(model: nn.Module) -> fx.GraphModule:
    leaves = COMPRESSIBLE + (_BatchNorm,)

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
            return isinstance(m, leaves) or super().is_leaf_module(m, qualname)

    return fx.GraphModule(model, Tracer().trace(model))


def require_batchnorm(model: nn.Module) -> None:
    if not any(isinstance(m, _BatchNorm) for m in model.modules()):
        name = getattr(model, "registry_name", type(model).__name__)
        raise CompressionSpecError(f"datafree compression needs BatchNorm statistics, but {name} has no BatchNorm layer",
                                   "train the model with BatchNorm (e.g. lcs_cnn with norm: batch), or use a "
                                   "round-to-nearest spec such as int8 or int4:block=0")


@torch.no_grad()
def synthetic_inputs(model: nn.Module, example: torch.Tensor, n: int = SAMPLES,
                     seed: int = SEED) -> tuple[dict[str, torch.Tensor], dict[str, list[str]]]:
    """(layer name -> n synthetic inputs, layer name -> the sources they came from). `example` gives the input
    shape (batch ignored)."""
    require_batchnorm(model)
    gen = torch.Generator().manual_seed(seed)
    lo, hi = PRIOR
    x = lo + (hi - lo) * torch.rand((n, *example.shape[1:]), generator=gen)
    interp = _Synthesizer(_trace(model.eval()), gen)
    interp.run(x)
    return interp.inputs, _layer_sources(interp)


def _layer_sources(interp: _Synthesizer) -> dict[str, list[str]]:
    out = {}
    for node in interp.module.graph.nodes:
        if node.op == "call_module" and node.target in interp.inputs and node.args:
            arg = node.args[0]
            out[str(node.target)] = sorted(interp._src.get(arg.name, set())) if isinstance(arg, fx.Node) else []
    return out


@torch.no_grad()
def real_inputs(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The float model's own activations at each conv/linear input on real images `x` (the upper bound)."""
    got: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_pre_hook(lambda _m, a, name=name: got.setdefault(name, a[0].detach().clone()))
             for name, m in model.named_modules() if isinstance(m, COMPRESSIBLE)]
    try:
        model.eval()(x)
    finally:
        for h in hooks:
            h.remove()
    return got


def following_batchnorm(model: nn.Module) -> dict[str, str]:
    """Layer name -> the BatchNorm that directly consumes its output (and nothing else does)."""
    gm = _trace(model)
    out = {}
    for node in gm.graph.nodes:
        if node.op == "call_module" and isinstance(gm.get_submodule(node.target), COMPRESSIBLE):
            users = list(node.users)
            if len(users) == 1 and users[0].op == "call_module" and \
                    isinstance(gm.get_submodule(users[0].target), _BatchNorm):
                out[str(node.target)] = str(users[0].target)
    return out


# --- one layer job ------------------------------------------------------------------------------------------------

def _forward(layer: nn.Module, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    return layer._conv_forward(x, w, b) if isinstance(layer, nn.Conv2d) else F.linear(x, w, b)


def _rows(t: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return t.reshape((-1,) + (1,) * (w.dim() - 1))


def learned_quant(w: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    """scale * clamp(round(w / scale)) per output channel, codes in the symmetric RTN range of models/layers/quant.py
    ([-2^(B-1), 2^(B-1) - 1]); straight-through for the rounding, gradients reach both w and the scale (LSQ)."""
    s = _rows(scale, w)
    t = (w / s).clamp(*qrange(bits, True))
    codes = encode(w.detach(), s.detach(), None, bits)
    return s * (t + (codes - t).detach())


def _weight(w: torch.Tensor, scale: torch.Tensor, bits: int, mask: torch.Tensor | None) -> torch.Tensor:
    w = w if mask is None else w * mask
    return w if bits >= 32 else learned_quant(w, scale, bits)


def _normalised_mse(layer: nn.Module, x: torch.Tensor, target: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None,
                    shift: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
    out = _forward(layer, x, w, b) + shift.reshape((1, -1) + (1,) * (target.dim() - 2))
    return (out - target).pow(2).mean() / norm


def reconstruct_layer(job: dict[str, Any]) -> LayerResult:
    """Fit one layer's compressed weights, per-channel scales and offset to its float outputs on `job["inputs"]`
    (minibatches of BATCH, Adam with cosine decay). Starts from round-to-nearest (max scaling) with a zero offset and
    keeps the best point on the full input set (checked every CHECK_EVERY steps), so it never ends worse than RTN
    on its own inputs."""
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(job["seed"])
    layer, x, bits, mask = job["layer"], job["inputs"], job["bits"], job["mask"]
    w0 = layer.weight.detach()
    b0 = None if layer.bias is None else layer.bias.detach()
    with torch.no_grad():
        target = _forward(layer, x, w0, b0)
        norm = target.pow(2).mean().clamp_min(1e-12)
    w = (w0 if mask is None else w0 * mask).clone().requires_grad_(True)
    rows = (w0 if mask is None else w0 * mask).detach().reshape(w0.shape[0], -1)
    scale = (rows.abs().amax(1).clamp_min(1e-12) / qrange(bits, True)[1] if bits < 32
             else torch.ones(w0.shape[0])).requires_grad_(bits < 32)
    shift = torch.zeros(w0.shape[0], requires_grad=b0 is not None or job["fold"])
    params = [p for p in (w, scale, shift) if p.requires_grad]
    lr = job["lr"] * float(w0.abs().mean())
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, job["steps"])

    def full_mse() -> float:
        with torch.no_grad():
            return float(_normalised_mse(layer, x, target, _weight(w, scale, bits, mask), b0, shift, norm))

    def snapshot() -> tuple[torch.Tensor, ...]:
        return tuple(p.detach().clone() for p in (w, scale, shift))

    mse_start = full_mse()
    best, best_mse = snapshot(), mse_start
    for step in range(job["steps"]):
        idx = torch.randint(len(x), (min(BATCH, len(x)),), generator=gen)
        loss = _normalised_mse(layer, x[idx], target[idx], _weight(w, scale, bits, mask), b0, shift, norm)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            scale.clamp_(min=1e-12)
        check = (step + 1) % CHECK_EVERY == 0 or step + 1 == job["steps"]
        if check and (m := full_mse()) < best_mse:
            best, best_mse = snapshot(), m
    bw, bscale, bshift = best
    with torch.no_grad():  # stored exactly as scale * integer code
        wq = bw if mask is None else bw * mask
        wq = wq if bits >= 32 else _rows(bscale, wq) * encode(wq, _rows(bscale, wq), None, bits)
    fold = b0 is None and job["fold"]
    return LayerResult(job["name"], wq, None if b0 is None else b0 + bshift, bshift if fold else None,
                       bscale if bits < 32 else None, mse_start, best_mse, time.perf_counter() - t0)


def _init_worker() -> None:
    torch.set_num_threads(1)


def run_jobs(jobs: list[dict[str, Any]], workers: int) -> tuple[list[LayerResult], float]:
    """Every layer job, in `workers` processes (capped at the core count and the job count; 1: in this process).
    Returns the results in job order and the wall-clock seconds."""
    workers = max(1, min(workers, os.cpu_count() or 1, len(jobs)))
    t0 = time.perf_counter()
    if workers == 1:  # one thread, as in each worker: tiny layers lose to thread overhead, and results match
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            results = [reconstruct_layer(j) for j in jobs]
        finally:
            torch.set_num_threads(threads)
    else:
        import multiprocessing

        # fork where the platform has it: no re-import of torch or of the caller's main module in each worker
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method),
                                 initializer=_init_worker) as pool:
            results = list(pool.map(reconstruct_layer, jobs))
    return results, time.perf_counter() - t0


# --- the model-level method ---------------------------------------------------------------------------------------

def magnitude_masks(model: nn.Module, sparsity: float) -> dict[str, torch.Tensor]:
    """Global L1-magnitude masks (the same criterion as `prune_`), one per conv/linear weight."""
    from exporters.compression.torch_level import prune_

    probe = copy.deepcopy(model)
    prune_(probe, sparsity)
    return {n: (m.weight != 0).float() for n, m in probe.named_modules() if isinstance(m, COMPRESSIBLE)}


def _jobs(model: nn.Module, inputs: dict[str, torch.Tensor], bits: int, masks: dict[str, torch.Tensor] | None,
          steps: int, seed: int, lr: float) -> list[dict[str, Any]]:
    follow = following_batchnorm(model)
    return [{"name": n, "layer": copy.deepcopy(m).eval(), "inputs": inputs[n], "bits": bits, "steps": steps,
             "mask": None if masks is None else masks[n], "fold": n in follow, "lr": lr,
             "seed": seed * 1000 + i}
            for i, (n, m) in enumerate((n, m) for n, m in model.named_modules() if isinstance(m, COMPRESSIBLE))]


@torch.no_grad()
def _apply(model: nn.Module, results: list[LayerResult]) -> None:
    follow = following_batchnorm(model)
    for r in results:
        layer = model.get_submodule(r.name)
        layer.weight.copy_(r.weight)
        if r.bias is not None:
            layer.bias.copy_(r.bias)
        if r.offset is not None:  # BN(x + d) with running mean mu == BN(x) with running mean mu - d
            model.get_submodule(follow[r.name]).running_mean.sub_(r.offset)
    model.datafree_scales = {r.name: r.scale for r in results if r.scale is not None}


def stored_bits(model: nn.Module, bits: int) -> dict[str, Any]:
    """Bits of what a per-channel format stores: B-bit codes plus one fp32 scale per output channel, counted per
    layer (a pruned float layer counts 32 bits per weight: sparsity pays off only in sparse storage)."""
    layers, total_bits, total = {}, 0, 0
    for n, m in model.named_modules():
        if isinstance(m, COMPRESSIBLE):
            k = m.weight.numel()
            b = k * bits + 32 * m.weight.shape[0] if bits < 32 else 32 * k
            layers[n] = {"bits": bits, "bits_per_weight": b / k, "weights": k}
            total_bits, total = total_bits + b, total + k
    return {"bits_per_weight": total_bits / max(total, 1), "size_bytes": -(-total_bits // 8), "layers": layers}


def reconstruct_(model: nn.Module, inputs: dict[str, torch.Tensor], bits: int, sparsity: float = 0.0,
                 steps: int = STEPS, workers: int = 1, seed: int = SEED, lr: float = LR) -> dict[str, Any]:
    """Compress every conv/linear of `model` in place, each on its own `inputs[name]` (synthetic or real).
    Returns the report: per-layer MSE before/after, seconds per layer, wall-clock, bits per weight."""
    masks = magnitude_masks(model, sparsity) if sparsity > 0 else None
    results, wall = run_jobs(_jobs(model, inputs, bits, masks, steps, seed, lr), workers)
    _apply(model, results)
    report = stored_bits(model, bits)
    for r in results:
        report["layers"][r.name].update(mse_rtn=r.mse_rtn, mse=r.mse, seconds=r.seconds,
                                        offset_folded=r.offset is not None)
    report.update(wall_seconds=wall, workers=max(1, min(workers, os.cpu_count() or 1, len(results))),
                  layer_seconds=sum(r.seconds for r in results), steps=steps, bits=bits, sparsity=sparsity)
    return report


def _cache_key(model: nn.Module, bits: int, sparsity: float, steps: int, samples: int, seed: int) -> str:
    h = hashlib.sha256(repr((type(model).__name__, bits, sparsity, steps, samples, seed, PRIOR, LR)).encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def default_workers() -> int:
    return os.cpu_count() or 1


def datafree_(model: nn.Module, bits: int, sparsity: float = 0.0, workers: int | None = None, steps: int = STEPS,
              samples: int = SAMPLES, seed: int = SEED) -> nn.Module:
    """The data-free compression of `model` in place (cached per weights and settings within a process, so the
    formats exported from one checkpoint share one run). The report is `model.compression_report`."""
    from models.registry import example_inputs

    require_batchnorm(model)
    model.eval()
    key = _cache_key(model, bits, sparsity, steps, samples, seed)
    if key not in _CACHE:
        inputs, sources = synthetic_inputs(model, example_inputs(model, 1)[0], samples, seed)
        report = reconstruct_(model, inputs, bits, sparsity, steps, workers or default_workers(), seed)
        for name, src in sources.items():
            report["layers"][name]["inputs_from"] = src
        report.update(method="layer-wise data-free reconstruction", samples=samples,
                      prior=f"uniform{PRIOR}", higher_precision=_higher_precision(model))
        _CACHE[key] = ({k: v.clone() for k, v in model.state_dict().items()}, report, model.datafree_scales)
    state, report, scales = _CACHE[key]
    model.load_state_dict(state)
    model.compression_report, model.datafree_scales = copy.deepcopy(report), dict(scales)
    return model


def _higher_precision(model: nn.Module) -> list[str]:
    """What stays in fp32 at torch level: every bias and norm parameter (conv/linear weights are all compressed,
    the first and last layer included)."""
    return sorted(n for n, p in model.named_parameters() if not (n.endswith(".weight") and isinstance(
        model.get_submodule(n.rsplit(".", 1)[0]), COMPRESSIBLE)))


# --- exports through each format's own library, with the learned values -------------------------------------------

def learned_codes(model: nn.Module) -> list[tuple[str, np.ndarray]]:
    """(layer name, integer codes) for every layer `datafree_` quantized (weight == scale * code exactly)."""
    scales = getattr(model, "datafree_scales", None)
    if not scales:
        raise CompressionSpecError("the model carries no datafree scales", "compress it with compress_(model, spec) "
                                   "for a datafree:bits=... spec before exporting")
    out = []
    for name, s in scales.items():
        w = model.get_submodule(name).weight.detach()
        out.append((name, torch.round(w / _rows(s, w)).numpy().astype(np.int8)))
    return out


def match_codes(w: np.ndarray, layers: list[tuple[str, np.ndarray]]) -> tuple[str, np.ndarray, np.ndarray] | None:
    """The learned layer whose codes `w` is a per-row multiple of (a converter may fold the next BatchNorm into the
    weight, which rescales each output channel and keeps its codes): (name, codes, fp32 scale per row)."""
    for name, codes in layers:
        if codes.shape != w.shape:
            continue
        c = codes.reshape(len(codes), -1).astype(np.float64)
        rows = w.reshape(len(w), -1).astype(np.float64)
        scale = (rows * c).sum(1) / np.maximum((c * c).sum(1), 1)
        if np.abs(rows - scale[:, None] * c).max() <= 1e-5 * max(np.abs(rows).max(), 1e-12):
            return name, codes, scale.astype(np.float32)
    return None


def onnx_qdq(graph, model: nn.Module, bits: int) -> dict[str, Any]:
    """Weight-only QDQ in place on an ONNX model: each learned Conv/Gemm weight becomes INT4 (bits <= 4) or INT8
    codes + fp32 per-output-channel scales feeding DequantizeLinear(axis=0). Returns the export details."""
    from onnx import TensorProto, helper, numpy_helper

    from exporters.onnx import _pack_int4

    layers = learned_codes(model)
    dtype = TensorProto.INT4 if bits <= 4 else TensorProto.INT8
    inits = {t.name: t for t in graph.graph.initializer}
    nodes, done = [], {}
    for node in graph.graph.node:
        name = node.input[1] if node.op_type in ("Conv", "Gemm") and len(node.input) > 1 else None
        if name not in inits or name in done:
            continue
        hit = match_codes(numpy_helper.to_array(inits[name]).astype(np.float32), layers)
        if hit is None:
            continue
        layer, codes, scale = hit
        raw = _pack_int4(codes) if dtype == TensorProto.INT4 else codes.tobytes()
        graph.graph.initializer.remove(inits[name])
        graph.graph.initializer.extend([helper.make_tensor(name + "_q", dtype, list(codes.shape), raw, raw=True),
                                        numpy_helper.from_array(scale, name + "_scale")])
        nodes.append(helper.make_node("DequantizeLinear", [name + "_q", name + "_scale"], [name], axis=0))
        done[name] = layer
    all_nodes = nodes + list(graph.graph.node)
    del graph.graph.node[:]
    graph.graph.node.extend(all_nodes)
    return {"tool": f"QDQ weight-only: DequantizeLinear(axis=0), {'INT4' if bits <= 4 else 'INT8'} codes + fp32 "
                    "per-channel scales learned by datafree", "quantized_layers": sorted(done.values()),
            "higher_precision_layers": sorted({n for n, _ in layers} - set(done.values()))}


def coreml_palettize(mlmodel, model: nn.Module):
    """coremltools.optimize.coreml.palettize_weights with one lookup table per output channel holding exactly the
    learned values (mode "unique": nbits is the smallest of 1, 2, 3, 4, 6, 8 that holds them)."""
    import coremltools.optimize.coreml as cto

    learned_codes(model)  # a clear error when the model was not compressed by datafree
    cfg = cto.OptimizationConfig(global_config=cto.OpPalettizerConfig(
        mode="unique", granularity="per_grouped_channel", group_size=1, weight_threshold=0))
    return cto.palettize_weights(mlmodel, cfg), {
        "tool": "coremltools.optimize.coreml.palettize_weights(OpPalettizerConfig(mode='unique', "
                "per_grouped_channel, group_size=1, weight_threshold=0)): per-channel LUTs of the learned values"}


def palette_bits(bits: int) -> int:
    """The Core ML LUT width ("unique" mode picks the smallest of 1, 2, 3, 4, 6, 8) that holds B-bit codes."""
    return min(b for b in (1, 2, 3, 4, 6, 8) if b >= bits)
