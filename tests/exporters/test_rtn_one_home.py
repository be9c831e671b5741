"""One RTN (models/layers/quant.py) reproduces, bit for bit, each round-to-nearest it replaced: the LM linears'
group-wise RTN, the torch-level block fake quantization, LCS+Q fake quantization, ONNX int4 codes and the QuantSpec
KV cache. The `_old_*` functions are the replaced code, copied verbatim."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from exporters import onnx as onnx_exporter
from exporters.compression import rtn_groups, torch_level
from models import kv_quant
from models.layers import quant, subspace


# --- the replaced implementations --------------------------------------------------------------------------------

def _old_rtn_groupwise(w, bits, group, symmetric=True):  # exporters/compression/rtn_groups.py
    flat = w.detach().float().reshape(-1)
    pad = (-flat.numel()) % group
    g = torch.cat([flat, flat.new_zeros(pad)]).reshape(-1, group)
    if symmetric:
        qmax = 2 ** (bits - 1) - 1
        scale = (g.abs().amax(1, keepdim=True) / qmax).clamp_min(1e-8).half().float()
        deq = (g / scale).round().clamp(-qmax - 1, qmax) * scale
        overhead = 16
    else:
        levels = 2 ** bits - 1
        lo, hi = g.amin(1, keepdim=True), g.amax(1, keepdim=True)
        scale = ((hi - lo) / levels).clamp_min(1e-8).half().float()
        zero = lo.half().float()
        deq = ((g - zero) / scale).round().clamp(0, levels) * scale + zero
        overhead = 32
    n_groups = g.shape[0]
    bpw = (g.numel() * bits + n_groups * overhead) / flat.numel()
    return deq.reshape(-1)[: flat.numel()].reshape(w.shape).to(w.dtype), bpw


def _old_quantize_blockwise(w, bits, block):  # exporters/compression/torch_level.py
    flat = w.reshape(w.shape[0], -1)
    cols = flat.shape[1]
    block = block or cols
    pad = (-cols) % block
    padded = nn.functional.pad(flat, (0, pad)).reshape(flat.shape[0], -1, block)
    qmax = 2 ** (bits - 1) - 1
    scale = padded.abs().amax(-1, keepdim=True).clamp_min(1e-12) / qmax
    q = (padded / scale).round().clamp(-qmax - 1, qmax) * scale
    return q.reshape(flat.shape[0], -1)[:, :cols].reshape(w.shape)


def _old_fake_quant(w, bits):  # models/layers/subspace.py
    qmax = 2 ** (bits - 1) - 1
    scale = w.detach().abs().max().clamp_min(1e-12) / qmax
    q = torch.clamp(torch.round(w / scale), -qmax - 1, qmax) * scale
    return w + (q - w).detach() if w.requires_grad else q


def _old_onnx_int4(w, block):  # exporters/onnx.py quantize_weights_int4
    out, k = w.shape[0], int(np.prod(w.shape[1:]))
    b = block or k
    flat = np.pad(w.reshape(out, k), ((0, 0), (0, (-k) % b))).reshape(out, -1, b)
    scale = np.maximum(np.abs(flat).max(-1), 1e-12) / 7.0
    q = np.clip(np.round(flat / scale[..., None]), -8, 7).reshape(out, -1)[:, :k]
    return q, scale.astype(np.float32), b


def _old_hier_quantize(x):  # models/kv_quant.py
    xf = x.float()
    lo, hi = xf.amin(-1, keepdim=True), xf.amax(-1, keepdim=True)
    scale = ((hi - lo) / 15).to(torch.float16).float()
    minimum = lo.to(torch.float16).float()
    inv = torch.where(scale > 0, 1.0 / scale.clamp_min(1e-30), torch.zeros_like(scale))
    cu = ((xf - minimum) * inv).round().clamp(0, 15)
    resid = xf - (minimum + scale * cu)
    cl = (resid * inv * 16).round().clamp(-8, 7)
    return cu, cl, scale, minimum


def _old_hier_dequantize(cu, cl, scale, minimum, bits):
    x4 = minimum + scale * cu
    return x4 if bits == 4 else x4 + (scale / 16) * cl


# --- inputs ---------------------------------------------------------------------------------------------------------

def _tensors(shape, seed=0):
    """Gaussian, heavy-tailed, tiny-magnitude, and on-the-grid values (rounding ties)."""
    g = torch.Generator().manual_seed(seed)
    n = torch.randn(shape, generator=g)
    yield n
    yield n ** 3 * 5
    yield n * 1e-3 + 0.5
    yield torch.randint(-14, 15, shape, generator=g).float() / 2


def _same(a: torch.Tensor, b: torch.Tensor) -> None:
    """Same dtype, shape and bits (NaN and -0.0 included)."""
    assert a.dtype == b.dtype and a.shape == b.shape
    ints = {1: torch.uint8, 2: torch.int16, 4: torch.int32}[a.element_size()]
    assert torch.equal(a.contiguous().view(ints), b.contiguous().view(ints))


SHAPES = [(16, 64), (12, 50), (7, 3, 3, 5)]  # whole groups, partial last group, conv weight


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("bits,group,symmetric", [(8, 32, True), (4, 32, True), (4, 32, False), (3, 32, False),
                                                  (2, 32, False), (4, 128, False), (4, 128, True)])
def test_lm_groupwise_rtn_is_the_old_one(shape, bits, group, symmetric) -> None:
    for w in _tensors(shape, seed=bits + group):
        new, bpw = rtn_groups.rtn_groupwise(w, bits, group, symmetric)
        old, old_bpw = _old_rtn_groupwise(w, bits, group, symmetric)
        _same(new, old)
        assert bpw == old_bpw


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("bits,block", [(4, 32), (8, 0), (4, 0), (4, 16), (2, 8)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_block_fake_quantize_is_the_old_one(shape, bits, block, dtype) -> None:
    for w in _tensors(shape, seed=bits + block):
        w = w.to(dtype)
        _same(quant.rtn(w, bits, block), _old_quantize_blockwise(w, bits, block))
    model, ref = nn.Sequential(nn.Linear(20, 7), nn.Conv2d(3, 5, 3)), nn.Sequential(nn.Linear(20, 7), nn.Conv2d(3, 5, 3))
    ref.load_state_dict(model.state_dict())
    torch_level.fake_quantize_(model, bits, block)
    for m in ref:
        _same(model[list(ref).index(m)].weight.data, _old_quantize_blockwise(m.weight.data, bits, block))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_lcs_fake_quant_is_the_old_one(shape, bits) -> None:
    for w in _tensors(shape, seed=bits):
        _same(quant.fake_quant(w, bits, layout="flat"), _old_fake_quant(w, bits))
        a, b = w.clone().requires_grad_(), w.clone().requires_grad_()
        qa, qb = quant.fake_quant(a, bits, layout="flat"), _old_fake_quant(b, bits)
        _same(qa.detach(), qb.detach())
        (qa * w).sum().backward()
        (qb * w).sum().backward()
        _same(a.grad, b.grad)  # straight through
    layer = subspace.SubspaceLinear(20, 6, kind="line")
    layer.bits = bits
    _same(layer.sparse_weight().detach(), _old_fake_quant(layer.at("weight"), bits).detach())


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("block", [0, 16, 32, 128])
def test_onnx_int4_codes_are_the_old_ones(shape, block) -> None:
    for w in _tensors(shape, seed=block):
        w = w.numpy()
        codes, scale, b = onnx_exporter.int4_codes(w, block)
        old_codes, old_scale, old_b = _old_onnx_int4(w, block)
        assert b == old_b and scale.dtype == np.float32 and scale.shape == old_scale.shape
        assert np.array_equal(codes, old_codes) and np.array_equal(scale.view(np.int32), old_scale.view(np.int32))


@pytest.mark.parametrize("shape", [(2, 3, 4, 16), (5, 32), (3, 2, 8)])
def test_kv_hier_quantize_is_the_old_one(shape) -> None:
    for x in _tensors(shape, seed=shape[-1]):
        c = kv_quant.hier_quantize(x)
        cu, cl, scale, minimum = _old_hier_quantize(x)
        _same(c.upper, kv_quant.pack4(cu.to(torch.uint8)))
        _same(c.lower, kv_quant.pack4((cl + 8).to(torch.uint8)))
        _same(c.scale, scale.to(torch.float16))
        _same(c.minimum, minimum.to(torch.float16))
        for bits in (4, 8):
            _same(kv_quant.hier_dequantize(c, bits), _old_hier_dequantize(cu, cl, scale, minimum, bits))
    const = torch.full(shape, 0.25)  # zero scale: codes 0, exact
    assert torch.equal(kv_quant.hier_dequantize(kv_quant.hier_quantize(const), 8), const)


def test_zero_groups_give_zeros_not_nan() -> None:
    """An all-zero group (e.g. after pruning) has a zero scale: its codes are 0 (the old LM RTN divided by 0)."""
    w = torch.randn(4, 64)
    w[1, :32] = 0
    for symmetric in (True, False):
        deq, _ = rtn_groups.rtn_groupwise(w, 4, 32, symmetric)
        assert torch.isfinite(deq).all() and torch.equal(deq[1, :32], w[1, :32])


def test_stored_bits_count_what_is_stored() -> None:
    q = quant.rtn_quantize(torch.randn(10, 50), 4, 32, symmetric=False, layout="flat", scale_dtype=torch.float16)
    assert q.codes.shape == (1, 16, 32) and q.scale.shape == q.zero.shape == (1, 16, 1)
    assert q.stored_bits() == 512 * 4 + 2 * 16 * 16
    q = quant.rtn_quantize(torch.randn(10, 50), 8, 32)  # rows: two groups a row, fp32 scales, no zero point
    assert q.stored_bits() == 10 * 64 * 8 + 20 * 32 and q.int_codes().shape == (10, 50)
    with pytest.raises(ValueError, match="layout"):
        quant.rtn(torch.randn(3, 4), 4, layout="cols")
