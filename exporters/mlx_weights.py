"""MLX weights: what an .mlxfn file stores for the graph's constants per compression spec (fp32, fp16, or one
`mx.quantize`d block), and the graph ops that rebuild them in fp32. Used by exporters/mlx.py."""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx
import numpy as np
import torch

from exporters.compression.spec import CompressionSpec
from exporters.mlx_ops import TO_CL
from models.errors import ConversionError

GROUP_SIZES = (32, 64, 128)     # what mx.quantize accepts in affine mode


MIN_SAVING_BYTES = 512  # a weight is quantized only if that saves more than the graph nodes that cut it out cost


def quantized_bytes(w: np.ndarray, g: int, bits: int) -> int:
    """Packed codes plus one fp16 scale and one fp16 bias per group; each row padded to whole groups."""
    rows, k = w.shape[0], w.size // w.shape[0]
    return rows * -(-k // g) * (g * bits // 8 + 4)


def worth_quantizing(w: np.ndarray, g: int, bits: int) -> bool:
    return w.size * 4 - quantized_bytes(w, g, bits) > MIN_SAVING_BYTES


def group_size(weights: list[np.ndarray], bits: int, block: int) -> int:
    """spec.block when MLX takes it; block 0 (per channel, which MLX cannot do): the group size that stores
    the model's weights in the fewest bytes."""
    if block:
        if block not in GROUP_SIZES:
            sizes = "/".join(map(str, GROUP_SIZES))
            raise ConversionError(f"MLX quantizes groups of {sizes} values, not block={block}", "use block=32, 64 or 128")
        return block

    def total(g: int) -> int:
        return sum(quantized_bytes(w, g, bits) if worth_quantizing(w, g, bits) else w.size * 4 for w in weights)
    return min(GROUP_SIZES, key=lambda g: (total(g), -g))


@dataclass
class QuantizedBlock:
    """Every quantized weight in one `mx.quantize`d matrix with one group per row, so the graph holds a single
    `mx.dequantize`: on the CPU it expands into 30-50 primitives, which per layer would outweigh the saving.
    Each weight is cut out again by rows (`take`, as Slice cannot re-infer its shape in a shapeless export)."""
    q: mx.array
    scales: mx.array
    biases: mx.array
    group: int
    bits: int
    layout: list[tuple[str, int, int, int, tuple[int, ...]]]  # name, first row, rows, row length k, shape

    @classmethod
    def build(cls, weights: dict[str, np.ndarray], group: int, bits: int) -> "QuantizedBlock":
        parts, layout, row = [], [], 0
        for name, w in weights.items():
            flat = w.reshape(w.shape[0], -1)   # a row per output channel, groups along the input dims
            k = flat.shape[1]
            part = np.pad(flat, ((0, 0), (0, (-k) % group)), mode="edge").reshape(-1, group)
            layout.append((name, row, len(part), k, w.shape))
            parts.append(part)
            row += len(part)
        q, scales, biases = mx.quantize(mx.array(np.concatenate(parts).astype(np.float16)), group_size=group, bits=bits)
        mx.eval(q, scales, biases)
        return cls(q, scales, biases, group, bits, layout)

    def arrays(self) -> list[mx.array]:
        return [self.q, self.scales, self.biases]

    def unpack(self) -> dict[str, mx.array]:
        full = mx.dequantize(self.q, self.scales, self.biases, group_size=self.group, bits=self.bits, dtype=mx.float32)
        out = {}
        for name, row, rows, k, shape in self.layout:
            w = mx.take(full, mx.arange(row, row + rows), axis=0).reshape(shape[0], -1)
            out[name] = (mx.take(w, mx.arange(k), axis=1) if w.shape[1] != k else w).reshape(shape)
        return out


class WeightStore:
    """The arrays the file stores for the graph's constants, per the spec, and `materialize()`: the graph ops
    that turn them back into fp32 values, traced once per call."""

    def __init__(self, tensors: dict[str, np.ndarray], spec: CompressionSpec) -> None:
        self.spec = spec
        floats = {n: w for n, w in tensors.items() if np.issubdtype(w.dtype, np.floating)}
        quantize = spec.method in ("int8", "int4") or spec.method == "datafree" and spec.bits < 32
        bits = 8 if spec.bits == 7 else spec.bits  # datafree's 7-bit codes: MLX has no 7-bit arrays
        candidates = {n: w for n, w in floats.items() if quantize and w.ndim >= 2}
        self.group = group_size(list(candidates.values()), bits, spec.block) if candidates else None
        chosen = {n: w for n, w in candidates.items() if worth_quantizing(w, self.group, bits)}
        self.kept_fp32 = len(candidates) - len(chosen)
        self.kept_fp32_names = sorted(set(candidates) - set(chosen))
        self.group = self.group if chosen else None
        self.block = QuantizedBlock.build(chosen, self.group, bits) if chosen else None
        half = spec.method == "fp16"
        self.plain = {n: mx.array(w.astype(np.float16 if half else np.float32) if n in floats else w)
                      for n, w in tensors.items() if n not in chosen}

    def materialize(self) -> dict[str, mx.array]:
        out = {n: a.astype(mx.float32) if a.dtype == mx.float16 else a for n, a in self.plain.items()}
        return {**out, **(self.block.unpack() if self.block else {})}

    @property
    def stored(self) -> list[mx.array]:
        return list(self.plain.values()) + (self.block.arrays() if self.block else [])

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.stored)

    @property
    def quantized(self) -> int:
        return len(self.block.layout) if self.block else 0


# --- the translated program ---------------------------------------------------------------------------------------

def stored_layout(tensor: torch.Tensor, channels_last: bool) -> np.ndarray:
    """Conv kernels are stored channels-last (O, kH, kW, I), as mx.conv2d takes them."""
    w = tensor.detach().cpu().numpy()
    return np.ascontiguousarray(w.transpose(TO_CL)) if channels_last else w
