"""MLX export: translate the torch.export graph op by op into mlx.core and save it with `mx.export_function`.

The .mlxfn file holds the graph and every weight, so it runs with MLX alone (`mx.import_function`, no torch).
The function takes and returns torch-layout (NCHW) arrays; between ops, 4-D activations stay channels-last
(NHWC), which is what MLX convolutions want, and conv kernels are stored channels-last (O, kH, kW, I) too.

Compression is MLX's own: `fp16` stores every float array in half precision (cast to fp32 in the graph);
`int8`/`int4` store conv and linear weights as `mx.quantize` groups (packed uint32 + fp16 scales and biases),
all in one block that a single `mx.dequantize` in the graph expands (weights too small to gain stay fp32);
`prune` stores the torch-pruned weights dense, zeros included.

The batch dimension is exported shapeless (any batch size) when the traced function gives the same rows for
a batch of 3 as for 3 batches of 1; otherwise the file is re-exported for the example batch only.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import mlx.core as mx
import numpy as np
import torch
from torch import fx, nn

from exporters.artifact import EVAL_DATA, input_specs
from exporters.compression.spec import CompressionSpec
from exporters.formats import MODEL_FILES
from exporters.mlx_ops import CONV_OPS, OPS, V, op_key, schema_args, torch_layout, unsupported
from exporters.mlx_weights import GROUP_SIZES, MIN_SAVING_BYTES, WeightStore, stored_layout  # noqa: F401 (GROUP_SIZES: tests)
from exporters.verify import numeric_parity, size_parity
from models.errors import ConversionError


class Program:
    """The torch.export graph as an MLX function: `program(*inputs) -> tuple of outputs`, torch layout both ends."""

    def __init__(self, ep: torch.export.ExportedProgram, spec: CompressionSpec) -> None:
        self.graph = ep.graph
        sig = ep.graph_signature
        self.user_inputs = list(sig.user_inputs)
        self.user_outputs = set(sig.user_outputs)
        self.op_counts = Counter(op_key(n) for n in self.graph.nodes if n.op == "call_function")
        missing = sorted(k for k in self.op_counts if k not in OPS)
        if missing:
            raise unsupported(f"op{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
        constants = self._constants(ep)
        conv_weights = {n.args[1].name for n in self.graph.nodes
                        if n.op == "call_function" and op_key(n) in CONV_OPS and isinstance(n.args[1], fx.Node)}
        self.cl_constants = {n for n in conv_weights if n in constants and constants[n].ndim == 4}
        self.weights = WeightStore({n: stored_layout(t, n in self.cl_constants) for n, t in constants.items()}, spec)

    def _constants(self, ep: torch.export.ExportedProgram) -> dict[str, torch.Tensor]:
        """Parameters, buffers and lifted constants the graph reads, by placeholder name."""
        sig, state = ep.graph_signature, {**ep.state_dict, **ep.constants}
        targets = {**sig.inputs_to_parameters, **sig.inputs_to_buffers, **sig.inputs_to_lifted_tensor_constants}
        used = {n.name for n in self.graph.nodes if n.op == "placeholder" and n.users}
        return {name: state[target] for name, target in targets.items() if name in used}

    def __call__(self, *inputs: mx.array) -> tuple[mx.array, ...]:
        feeds = dict(zip(self.user_inputs, inputs))
        constants = self.weights.materialize()
        env: dict[fx.Node, Any] = {}
        for node in self.graph.nodes:
            if node.op == "placeholder" and node.users:
                env[node] = V(feeds[node.name]) if node.name in feeds else \
                    V(constants[node.name], cl=node.name in self.cl_constants)
            elif node.op == "call_function":
                args = fx.node.map_arg(schema_args(node), lambda n: env[n])
                env[node] = OPS[op_key(node)](*args)
            elif node.op == "output":
                return tuple(torch_layout(env[n]) for n in node.args[0] if n.name in self.user_outputs)
        raise ConversionError("the exported graph has no output", "re-export the model")


def torch_graph(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> torch.export.ExportedProgram:
    """torch.export with an empty decomposition table: conv2d, linear, batch norm etc. stay whole."""
    with torch.no_grad():
        return torch.export.export(model.eval(), inputs).run_decompositions({})


# --- export and verify --------------------------------------------------------------------------------------------

def _metadata(inputs: tuple[torch.Tensor, ...], dynamic: bool, spec: CompressionSpec) -> str:
    return json.dumps({"producer": "edgezoo", "inputs": input_specs(inputs, dynamic), "dynamic_batch": dynamic,
                       "layout": "NCHW", "compression": spec.name})


def _batch_consistent(path: Path, example: list[mx.array]) -> bool:
    """A shapeless export is kept only if a batch of 3 gives the rows that 3 batches of 1 give."""
    fn = mx.import_function(str(path))
    rng = np.random.default_rng(0)
    xs = [mx.array(rng.standard_normal((3, *x.shape[1:])).astype(np.float32)).astype(x.dtype) for x in example]
    batched = [np.array(o) for o in fn(*xs)]
    rows = [[np.array(o) for o in fn(*(x[i:i + 1] for x in xs))] for i in range(3)]
    return all(b.shape[0] == 3 and np.allclose(b, np.concatenate([r[j] for r in rows]), rtol=1e-3, atol=1e-4)
               for j, b in enumerate(batched))


def _save(path: Path, program: Program, example: list[mx.array], inputs: tuple[torch.Tensor, ...],
          spec: CompressionSpec, static: str | None = None) -> tuple[bool, str | None]:
    """Export shapeless (any batch) when that traces and checks out, else (or when `static` says why not) for the
    example's batch size."""
    def fn(*xs: mx.array) -> tuple[mx.array, ...]:
        return program(*xs)

    if static:  # a graph with the batch baked in can abort MLX's BLAS when called with another batch
        mx.export_function(str(path), fn, *example, shapeless=False, metadata=_metadata(inputs, False, spec))
        return False, static
    try:
        mx.export_function(str(path), fn, *example, shapeless=True, metadata=_metadata(inputs, True, spec))
        if _batch_consistent(path, example):
            return True, None
        reason = "the shapeless trace gave different rows for a batch of 3"
    except (ValueError, RuntimeError) as e:
        reason = f"shapeless export failed: {str(e).splitlines()[0][:200]}"
    mx.export_function(str(path), fn, *example, shapeless=False, metadata=_metadata(inputs, False, spec))
    return False, reason


def export(model: nn.Module, inputs: tuple[torch.Tensor, ...], out_dir: Path, spec: CompressionSpec,
           sizes: tuple[int, ...] = (), io: Any = None) -> dict:
    """`sizes`: square input sizes besides the example's. A shapeless export takes them when every op is traced
    shape-polymorphically (global pooling CNNs are); each size is checked against torch and listed if it agrees.
    `io`: a user model's names, kept in the details (an .mlxfn takes its inputs by position)."""
    try:
        ep = torch_graph(model, inputs)
    except Exception as e:  # torch.export's own failures (data-dependent control flow, ...)
        raise ConversionError(f"torch.export of the model failed: {e.__class__.__name__}: "
                              f"{str(e).strip().splitlines()[0][:200] if str(e).strip() else ''}",
                              "make the model torch.export-able, or export to another format") from None
    program = Program(ep, spec)
    example = [mx.array(t.detach().cpu().numpy()) for t in inputs]
    path = Path(out_dir) / MODEL_FILES["mlx"]
    static = "the model keeps no dynamic batch axis" if io is not None and not any(
        a == 0 for axes in io.dynamic for a, *_ in axes) else None
    dynamic, note = _save(path, program, example, inputs, spec, static)
    w = program.weights
    info: dict[str, Any] = {
        "weight_bytes": w.nbytes,
        "graph_bytes": path.stat().st_size - w.nbytes,   # the rest of the file: ops, shapes, names
        "dynamic_batch": dynamic,
        "batch": None if dynamic else int(inputs[0].shape[0]),
        "translated_ops": dict(sorted(program.op_counts.items())),
        "stored_arrays": len(w.stored),
        "stored_dtypes": dict(Counter(str(a.dtype).removeprefix("mlx.core.") for a in w.stored)),
        "layout": "NCHW at the function boundary, channels-last (NHWC) inside; conv kernels stored OHWI",
        "torch_graph": "torch.export + run_decompositions({})",
        "mlx_version": mx.__version__,
    }
    if note:
        info["dynamic_batch_note"] = note
    if io is not None:
        info["positional_inputs"], info["positional_outputs"] = list(io.inputs), list(io.outputs)
    info.update(_compression_details(spec, w))
    if sizes:
        fn = mx.import_function(str(path))
        info["input_sizes"], info["size_parity"] = size_parity(model, lambda x: run_function(fn, x, dynamic), sizes,
                                                               out_dir)
    return info


def _compression_details(spec: CompressionSpec, w: WeightStore) -> dict[str, Any]:
    if spec.method in ("int8", "int4"):
        return {"quantization": "mx.quantize affine (min/max per group) in fp16, fp16 scales and biases; one shared "
                                "mx.dequantize in the graph; other arrays fp32",
                "bits": spec.bits, "group_size": w.group, "quantized_tensors": w.quantized,
                "kept_fp32_tensors": w.kept_fp32, "min_saving_bytes": MIN_SAVING_BYTES}
    if spec.method == "datafree" and spec.bits < 32:  # the learned values, re-gridded by mx.quantize
        return {"quantization": "mx.quantize affine groups of the datafree-learned weights (MLX has no per-channel "
                                "symmetric arrays: values off MLX's per-group grid move)", "bits": w.block.bits
                if w.block else None, "group_size": w.group, "quantized_tensors": w.quantized,
                "higher_precision_tensors": w.kept_fp32_names}
    if spec.method == "fp16":
        return {"storage": "every float array stored fp16, cast to fp32 in the graph"}
    if spec.method == "prune":
        return {"storage": "pruned weights (zeros from torch-level pruning) stored dense fp32: "
                           "MLX has no sparse storage, so the file is not smaller"}
    return {"storage": "fp32"}


def run_function(fn: Callable[..., Any], x: np.ndarray, dynamic: bool) -> np.ndarray:
    """All rows at once when the export takes any batch, else one row per call."""
    if dynamic:
        out = fn(mx.array(x))[0]
        mx.eval(out)
        return np.array(out)
    outs = []
    for i in range(len(x)):
        out = fn(mx.array(x[i:i + 1]))[0]
        mx.eval(out)
        outs.append(np.array(out))
    return np.concatenate(outs)


def verify(model: nn.Module, artifact) -> dict:
    """Run the .mlxfn in MLX on the artifact's held-out inputs and compare with the fp32 torch reference."""
    data = np.load(artifact.path / EVAL_DATA)
    fn, meta = mx.import_function(str(artifact.model_file), return_metadata=True)
    dynamic = bool(json.loads(meta).get("dynamic_batch")) if meta else False
    out = run_function(fn, data["x"].astype(np.float32), dynamic)
    return {"kind": "numeric", "runtime": "mlx", "dynamic_batch": dynamic, **numeric_parity(out, data["reference"])}
