"""QuantSpec with run-time packed weights (models/packed_runtime.py): the int4 draft kernels compute the RTN weights
they claim, grouped-query attention equals OpenELM's, and greedy self-speculation with an int4 draft and a bf16
verifier equals the verifier view's own greedy decoding token for token."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from models.errors import EdgeZooError
from models.layers.quant import rtn_quantize
from models.openelm import Attention, ModelArgs, OpenELM, build_mask
from models.packed_runtime import (GroupedQueryAttention, Int4Linear, OrtInt4Linear, runtime_copy,
                                   zero_point_int4)
from models.speculative import QuantSpecDecoder
from tests.models.test_speculative import _one_thread  # noqa: F401 (autouse: one thread per test)

# the smallest OpenELM the int4 kernels take: every linear's input width a multiple of 32, output of 16
ARGS = ModelArgs(model_dim=64, num_transformer_layers=2, head_dim=16, num_gqa_groups=2, qkv_multipliers=(1.0, 1.0),
                 ffn_multipliers=(2.0, 2.0), max_context_length=128)


@pytest.fixture(scope="module")
def model() -> OpenELM:
    torch.manual_seed(0)
    return OpenELM(ARGS).eval()


def _zero_point_weights(w: torch.Tensor, group: int) -> torch.Tensor:
    codes, scale, zero = zero_point_int4(w, group)
    return ((codes - zero[..., None]) * scale[..., None]).reshape(w.shape)


@pytest.mark.parametrize("cls", [OrtInt4Linear, Int4Linear])
def test_int4_kernels_multiply_by_their_4bit_weights(cls) -> None:
    torch.manual_seed(0)
    w, x = torch.randn(48, 96), torch.randn(5, 96)
    if cls is OrtInt4Linear:  # integer zero points
        deq = _zero_point_weights(w, 32)
    else:  # the min as zero point, bf16 scales
        deq = rtn_quantize(w, 4, 32, symmetric=False, scale_dtype=torch.bfloat16).dequantize()
    y, ref = cls(w, 32)(x), x @ deq.T
    # bf16 / int8 activations: ~1 % of the output scale; a wrong zero point or layout is off by the whole scale
    assert (y - ref).abs().max() < 0.03 * ref.abs().max()
    assert (x @ w.T - ref).abs().max() > 3 * (y - ref).abs().max()  # the 4-bit error dominates: codes are used
    rows = torch.cat([cls(w, 32)(x[i:i + 1]) for i in range(5)])
    assert torch.equal(rows, y) or cls is OrtInt4Linear  # the torch kernel is row-deterministic


def test_grouped_query_attention_equals_openelm_attention() -> None:
    torch.manual_seed(0)
    attn = Attention(ARGS, 4, 2).eval()
    grouped = GroupedQueryAttention(ARGS, 4, 2).eval()
    grouped.load_state_dict(attn.state_dict())
    x, past = torch.randn(1, 3, 64), (torch.randn(1, 2, 7, 16), torch.randn(1, 2, 7, 16))
    pos, mask = torch.arange(7, 10)[None], build_mask(3, 7, torch.zeros(1, dtype=torch.long))
    (y, kv), (yg, kvg) = attn(x, pos, mask, past), grouped(x, pos, mask, past)
    assert torch.allclose(y, yg, atol=1e-5) and all(torch.equal(a, b) for a, b in zip(kv, kvg))


def test_greedy_equals_the_verifier_with_packed_weights(model: OpenELM) -> None:
    dec = QuantSpecDecoder(model, runtime="int4", kv_group=8, residual=8)  # flushes every 8-16 tokens
    assert 4 < dec.weight_report["bits_per_weight"] < 8 and dec.runtime == "int4"
    accepted = corrected = 0
    for plen in (1, 17, 30):
        prompt = torch.randint(0, 256, (plen,), generator=torch.Generator().manual_seed(plen)).tolist()
        ref, _ = dec.verifier_generate(prompt, 32)
        for gamma in (1, 4):
            out, st = dec.generate(prompt, 32, gamma=gamma)
            assert out == ref, (plen, gamma)
            accepted, corrected = accepted + st.accepted, corrected + st.corrected
    assert accepted > 0 and corrected > 0  # both branches of the step ran


def test_runtime_copy_leaves_the_model_alone(model: OpenELM) -> None:
    before = {k: v.clone() for k, v in model.state_dict().items()}
    packed, report = runtime_copy(model, "bf16")
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert report["bits_per_weight"] == 16 and type(model.transformer.layers[0].attn) is Attention
    assert isinstance(packed.transformer.layers[0].attn, GroupedQueryAttention)
    tokens = torch.randint(0, 256, (1, 12))
    assert F.cross_entropy(packed(tokens)[0], tokens[0]).isfinite()
    assert (packed(tokens) - model(tokens)).abs().max() < 0.1  # bf16 weights: close to the fp32 model


@pytest.mark.parametrize("kwargs, match", [({"runtime": "int3"}, "unknown runtime"),
                                           ({"runtime": "int4", "weight_symmetric": True}, "asymmetric 4-bit"),
                                           ({"runtime": "int4", "weight_group": 48}, "groups of 48")])
def test_bad_runtime_settings_fail_cleanly(model: OpenELM, kwargs: dict, match: str) -> None:
    with pytest.raises(EdgeZooError, match=match):
        QuantSpecDecoder(model, **kwargs)


def test_in_place_caches_hold_what_the_concatenating_ones_do(model: OpenELM, monkeypatch) -> None:
    """Same passes through the in-place hierarchical cache and models.kv_quant's: equal x4 and x8 views after
    appends, rollbacks and flushes, and the runtime's attention grew the cache in place instead of concatenating."""
    from models import packed_runtime as PR
    from models.kv_quant import HierarchicalKVCache

    grown = []
    real = PR._grow_in_place
    monkeypatch.setattr(PR, "_grow_in_place", lambda past, new: grown.append(real(past, new)) or grown[-1])
    packed, _ = runtime_copy(model, "bf16")
    caches = PR.InPlaceHierarchicalKVCache(2, 8, 8), HierarchicalKVCache(2, 8, 8)
    tokens = torch.randint(0, 256, (1, 60), generator=torch.Generator().manual_seed(0))
    i = 0
    with torch.no_grad():
        for n, keep in ((9, 9), (1, 1), (5, 2), (20, 20), (4, 1), (3, 3)):
            for cache in caches:
                _, new = packed.forward_cached(tokens[:, i:i + n], cache.view(8 if n > 1 else 4))
                cache.append(new, n)
                cache.truncate(i + keep)
                cache.flush()
            i += keep
            for bits in (4, 8):
                for (a, b), (c, d) in zip(caches[0].view(bits), caches[1].view(bits)):
                    assert torch.equal(a, c) and torch.equal(b, d), (i, bits)
    assert caches[0].codes.store_len > 0 and any(g is not None for g in grown)
