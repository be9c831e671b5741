"""Hierarchical KV cache (card 02): reconstruction error on Gaussian data, flush / rollback invariants, bytes held."""

from __future__ import annotations

import pytest
import torch

from models.errors import EdgeZooError
from models.kv_quant import (HierarchicalKVCache, cache_bytes, dequantize_keys, dequantize_values, hier_dequantize,
                             hier_quantize, pack4, quantize_keys, quantize_values, store_length, unpack4)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_pack_roundtrip_and_code_ranges() -> None:
    codes = torch.randint(0, 16, (3, 5, 8), dtype=torch.uint8)
    assert pack4(codes).shape == (3, 5, 4) and torch.equal(unpack4(pack4(codes)), codes)
    x = torch.randn(64, 32) * 3 + 1
    c = hier_quantize(x)
    assert c.upper.dtype == c.lower.dtype == torch.uint8 and c.scale.dtype == torch.float16
    assert c.upper.shape == (64, 16) and c.scale.shape == (64, 1)
    lo = unpack4(c.lower).int() - 8
    assert int(lo.min()) >= -8 and int(lo.max()) <= 7
    x4, x8 = hier_dequantize(c, 4), hier_dequantize(c, 8)
    step = c.scale.float()
    err8 = (x8 - x).abs() / step
    assert float(err8.max()) <= 1 / 16 + 1e-3  # C_L in [-8, 7]: a residual near +s_U/2 loses up to one lower step
    assert float(err8.mean()) < 1 / 48  # ~uniform within half a lower step on average (1/64)
    assert float(((x4 - x).abs() / step).max()) <= 0.5 + 1e-3 + 1 / 16  # upper within half an upper step


@pytest.mark.parametrize("axis", ["keys", "values"])
def test_gaussian_relative_error_matches_card(axis: str) -> None:
    """Card (G = 128): x4 ~ 9.8e-2, x8 ~ 6.6e-3 relative error on Gaussian data (direct INT8 ~ 5.7e-3)."""
    torch.manual_seed(0)
    x = torch.randn(1, 4, 512, 128)
    q, dq = (quantize_keys, dequantize_keys) if axis == "keys" else (quantize_values, dequantize_values)
    c = q(x, 128)
    e4, e8 = _rel(dq(c, 4), x), _rel(dq(c, 8), x)
    assert 0.085 < e4 < 0.11, e4
    assert 0.0058 < e8 < 0.0075, e8
    assert 12 < e4 / e8 < 17  # the residual level buys ~16x


def test_groups_run_along_the_card_axes() -> None:
    """Keys: one group per channel over G tokens; values: one group per token over min(G, d) channels."""
    torch.manual_seed(0)
    k = torch.randn(1, 2, 16, 4)
    k[:, :, :, 0] *= 100  # one wide channel must not spoil the others' key groups
    ck = quantize_keys(k, 8)
    assert ck.scale.shape == (1, 2, 2, 4, 1)
    err = (dequantize_keys(ck, 8) - k).abs()
    assert float(err[..., 1:].max()) < 0.02 < float(err[..., 0].max())
    v = torch.randn(1, 2, 16, 4)
    v[:, :, 3] *= 100  # one wide token must not spoil other tokens' value groups
    cv = quantize_values(v, 8)
    assert cv.scale.shape == (1, 2, 16, 1, 1)  # d_head 4 < G 8: one group of 4 channels per token
    err = (dequantize_values(cv, 8) - v).abs()
    assert float(err[:, :, [0, 1, 2, 4]].max()) < 0.02 < float(err[:, :, 3].max())


def _fill(cache: HierarchicalKVCache, n: int, heads: list[int], seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    new = [(torch.randn(1, h, n, 8, generator=g), torch.randn(1, h, n, 8, generator=g)) for h in heads]
    cache.append(new, n)
    return new


def test_flush_rule_rollback_and_views() -> None:
    heads = [1, 2, 3]  # KV heads differ per layer
    c = HierarchicalKVCache(3, group=8, residual=8)
    first = _fill(c, 16, heads)
    assert c.flush() == 0 and c.buffer_len == 16 and c.view(4)[2][0].shape == (1, 3, 16, 8)  # <= 2R stays fp
    assert torch.equal(c.view(4)[0][0], first[0][0]) and torch.equal(c.view(8)[1][1], first[1][1])
    _fill(c, 5, heads, seed=1)  # 21 buffered > 2R: move 21 - 8 - 21 % 8 = 8
    assert c.flush() == 8 and c.store_len == 8 and c.buffer_len == 13 and len(c) == 21
    k4, k8 = c.view(4)[1][0], c.view(8)[1][0]
    assert k4.shape == k8.shape == (1, 2, 21, 8)
    assert torch.equal(k4[:, :, 8:], k8[:, :, 8:])  # buffer exact in both views
    assert _rel(k8[:, :, :8], first[1][0][:, :, :8]) < 0.03 < _rel(k4[:, :, :8], first[1][0][:, :, :8])
    c.truncate(10)  # rollback is a length decrement on the buffer
    assert len(c) == 10 and c.buffer_len == 2 and c.store_len == 8
    with pytest.raises(ValueError):
        c.truncate(7)  # never into the store
    _fill(c, 30, heads, seed=2)  # 32 buffered: move 32 - 8 - 0 = 24
    assert c.flush() == 24 and c.store_len == 32 and c.store_len % 8 == 0 and c.buffer_len == 8
    assert c.room() == 8 and c.view(8)[0][0].shape[2] == 40


def test_bytes_held_vs_fp_cache() -> None:
    heads = [2, 4]
    c = HierarchicalKVCache(2, group=8, residual=8)
    _fill(c, 40, heads)
    c.flush()  # 40 -> store 32, buffer 8
    b = c.nbytes()
    elems = sum(h * 32 * 8 for h in heads)  # per K (and per V) in the store
    assert b["upper"] == b["lower"] == elems  # K and V, half a byte each
    groups = sum(h * (32 // 8) * 8 + h * 32 * 1 for h in heads)  # key groups per channel + one value group per token
    assert b["scales"] == groups * 2 * 2
    assert b["buffer"] == sum(2 * h * 8 * 8 for h in heads) * 4  # fp32 buffer
    assert b["fp32"] == sum(2 * h * 40 * 8 for h in heads) * 4 and b["fp16"] == b["fp32"] // 2
    assert b["total"] == b["upper"] + b["lower"] + b["scales"] + b["buffer"]
    a = cache_bytes(heads, 8, 40, 8, 8, buffer_bytes=4)
    assert a["codes"] == b["upper"] + b["lower"] and a["scales"] == b["scales"] and a["buffer"] == b["buffer"]
    big = cache_bytes([4] * 6, 16, 512, 32, 32)  # the claim's isotropic model at 512 tokens
    # d_head 16: a value group is one token's 16 channels, so fp16 s_U/min add 2 bits per value element
    assert store_length(512, 32, 32) == 480 and 0.55 * big["fp16"] < big["quantspec"] < 0.65 * big["fp16"]
    assert big["draft_reads"] == big["quantspec"] - big["codes"] // 2  # the draft skips the lower plane


def test_bad_group_settings_are_user_errors() -> None:
    with pytest.raises(EdgeZooError):
        HierarchicalKVCache(2, group=8, residual=12)
    with pytest.raises(EdgeZooError):
        HierarchicalKVCache(2, group=7, residual=7)
