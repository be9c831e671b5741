"""Generation has one loop: `generate_step` over the torch model gives the tokens of the KV-cached reference loop
(greedy and seeded sampling, with and without left padding), the hierarchical and plain caches share one protocol,
and every runtime's greedy loop is `generate_step` over its prefill and decode steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import models.generation.generate as G
from models.generation.cache import Cache, FpKVCache
from models.generation.generate import cached_step, generate, generate_step
from models.generation.sampling import filtered_probs, make_sampler
from models.kv_quant import HierarchicalKVCache
from models.openelm import ModelArgs, OpenELM
from profiles.runtimes.base import Runtime


@pytest.fixture(scope="module")
def model() -> OpenELM:
    torch.manual_seed(0)
    m = OpenELM(ModelArgs.tiny()).eval()
    with torch.no_grad():  # varied greedy tokens (a random tiny model otherwise repeats one byte)
        m.transformer.norm.weight.copy_(torch.randn(m.args.model_dim))
    return m


@torch.no_grad()
def _reference(model: OpenELM, prompt, n, temperature=0.0, top_k=0, top_p=1.0, seed=None, pad=None):
    """The loop `generate` had before `generate_step`: prefill, then sample and decode, one token at a time."""
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    logits, cache = model.forward_cached(prompt, None, pad)
    out = []
    for _ in range(n):
        last = logits[:, -1]
        nxt = (last.argmax(-1) if temperature <= 0 else
               torch.multinomial(filtered_probs(last, temperature, top_k, top_p), 1, generator=gen)[:, 0])
        out.append(nxt)
        logits, cache = model.forward_cached(nxt[:, None], cache, pad)
    return torch.stack(out, 1)


@pytest.mark.parametrize("sampling", [{}, {"temperature": 1.0, "seed": 3}, {"temperature": 0.8, "top_k": 20,
                                                                          "top_p": 0.9, "seed": 11}])
@pytest.mark.parametrize("pad", [None, torch.tensor([0, 2])])
def test_generate_step_equals_the_reference_loop(model: OpenELM, sampling: dict, pad) -> None:
    prompt = torch.randint(0, 256, (2, 7), generator=torch.Generator().manual_seed(1))
    ref = _reference(model, prompt, 16, pad=pad, **sampling)
    assert len(set(ref[0].tolist())) > 3  # the tokens vary, so equality means something
    assert torch.equal(generate(model, prompt, 16, pad=pad, **sampling), ref)
    seed = sampling.get("seed")
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    sampler = make_sampler(sampling.get("temperature", 0.0), sampling.get("top_k", 0), sampling.get("top_p", 1.0), gen)
    with torch.no_grad():
        steps = list(generate_step(cached_step(model, FpKVCache(), pad), prompt, 16, sampler=sampler))
    assert torch.equal(torch.stack(steps, 1), ref)


def test_generate_step_is_lazy_and_stops_at_the_last_token() -> None:
    calls = []

    def step(tokens: np.ndarray) -> np.ndarray:
        calls.append(tokens.shape[1])
        return np.eye(5, dtype=np.float32)[None, [len(calls) % 5]]  # (1, 1, V): next id = number of calls mod 5

    assert list(generate_step(step, np.zeros((1, 3), np.int64), 0)) == [] and calls == []
    assert [int(t[0]) for t in generate_step(step, np.zeros((1, 3), np.int64), 3)] == [1, 2, 3]
    assert calls == [3, 1, 1]  # one prefill, one decode step per token after the first, nothing past the last


def test_both_caches_follow_the_protocol(model: OpenELM) -> None:
    hier, plain = HierarchicalKVCache(len(model.transformer.layers), 8, 8), FpKVCache()
    assert isinstance(hier, Cache) and isinstance(plain, Cache)
    tokens = torch.randint(0, 256, (1, 12), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        for cache in (hier, plain):
            step = cached_step(model, cache)
            step(tokens[:, :10])
            assert len(cache) == 10
            step(tokens[:, 10:])
            cache.truncate(11)  # a rejected entry rolls back
            assert len(cache) == 11 and all(k.shape[2] == 11 for k, _ in cache.view())
    full = model.forward_cached(tokens[:, :11], None)[1]
    assert all(torch.allclose(a[0], b[0], atol=1e-5) for a, b in zip(plain.view(), full))


class _Scripted(Runtime):
    """A runtime whose logits pick the next id as (last id + 1) mod V; counts its prefill and decode calls."""
    name = "scripted"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def prefill(self, ids: np.ndarray, shift: int = 0) -> np.ndarray:
        self.calls.append("prefill")
        self.shift = shift
        return self._logits(ids)

    def decode_step(self, token: np.ndarray) -> np.ndarray:
        self.calls.append("decode")
        return self._logits(token)

    def _logits(self, ids: np.ndarray) -> np.ndarray:
        return np.eye(7, dtype=np.float32)[(ids + 1 + self.shift) % 7]  # (B, T, V)


def test_runtime_greedy_goes_through_generate_step(monkeypatch) -> None:
    seen = []
    real = G.generate_step

    def spy(*args, **kwargs):
        seen.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(G, "generate_step", spy)
    rt = _Scripted()
    out = rt.greedy(np.array([[0, 1], [3, 4]]), 4, shift=1)  # prefill options reach prefill
    assert seen == [4] and rt.calls == ["prefill"] + ["decode"] * 3
    assert out.tolist() == [[3, 5, 0, 2], [6, 1, 3, 5]]
