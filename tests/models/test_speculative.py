"""QuantSpec self-speculative decoding (card 02): greedy exactness against the verifier view, the cache never
stores rejected tokens, the sampling rule is lossless (chi-square), the stream API the demo relies on."""

from __future__ import annotations

import math

import pytest
import torch

import models.speculative as spec
from models.errors import EdgeZooError
from models.generation.generate import generate
from models.generation.sampling import filtered_probs, make_sampler
from models.openelm import ModelArgs, OpenELM
from models.speculative import (QuantSpecDecoder, SpecStats, analytic_speedup, chi2_gof, speculative_accept,
                                tokens_per_verify)

NEAR_TIE = 1e-4


@pytest.fixture(autouse=True)
def _one_thread():
    """One-token passes of a tiny model are overhead-bound: extra threads only contend on a shared CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny() -> OpenELM:
    torch.manual_seed(0)
    return OpenELM(ModelArgs.tiny()).eval()


@pytest.fixture(scope="module")
def peaked() -> OpenELM:
    """A random tiny model with 4x logits: peaked enough for chi-square bins, draft and verifier clearly apart."""
    torch.manual_seed(1)
    m = OpenELM(ModelArgs.tiny()).eval()
    with torch.no_grad():
        m.transformer.norm.weight.mul_(4)
    return m


@pytest.fixture(scope="module")
def varied() -> OpenELM:
    """A random tiny model whose greedy tokens vary and whose logits are sensitive to the cache: x8 KV quantization
    changes some greedy tokens (by top-2 gaps of ~1e-3, far above float noise), so a decoder that verified on the
    fp cache instead of the x8 view would give different tokens."""
    torch.manual_seed(0)
    m = OpenELM(ModelArgs.tiny()).eval()
    with torch.no_grad():
        m.transformer.norm.weight.copy_(torch.randn(m.args.model_dim))
        for layer in m.transformer.layers:
            layer.attn.out_proj.weight.mul_(8.0)
            layer.ffn.proj_2.weight.mul_(8.0)
    return m


def _prompt(n: int, seed: int) -> list[int]:
    return torch.randint(0, 256, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


def _agree(out: list[int], ref: list[int], gaps: list[float]) -> bool:
    """Equal, or the first difference sits at a near-tie of the reference (card pitfall: compare in fp32)."""
    if out == ref:
        return True
    first = next(i for i, (a, b) in enumerate(zip(out, ref)) if a != b)
    return gaps[first] < NEAR_TIE


def test_greedy_equals_autoregressive_verifier_view(tiny: OpenELM) -> None:
    dec = QuantSpecDecoder(tiny, kv_group=8, residual=8)  # flushes every 8-16 tokens
    accepted = corrected = 0
    for plen in (1, 5, 17, 30):  # empty prefill, below 2R, just past 2R, several groups
        prompt = _prompt(plen, plen)
        ref, gaps = dec.verifier_generate(prompt, 40)
        for gamma in (1, 3, 6):
            out, st = dec.generate(prompt, 40, gamma=gamma)
            assert len(out) == 40 and _agree(out, ref, gaps), (plen, gamma)
            assert st.new_tokens == 40 and st.verify_passes < 40
            accepted, corrected = accepted + st.accepted, corrected + st.corrected
    assert accepted > 0 and corrected > 0  # both branches of the step were exercised


def test_greedy_follows_the_x8_cache_not_fp32(varied: OpenELM) -> None:
    """Speculative greedy output equals the x8-cache verifier's own greedy output token for token, in a setup where
    that output differs from plain fp32 greedy decoding: the test fails if the x8 view is not what is verified."""
    dec = QuantSpecDecoder(varied, kv_group=8, residual=8)
    differs = 0
    for plen, seed in ((30, 0), (40, 2), (17, 2), (5, 0)):
        prompt = _prompt(plen, seed)
        ref, gaps = dec.verifier_generate(prompt, 40)
        fp32 = [e.tokens[0] for e in dec.plain_stream(prompt, 40)]
        assert len(set(ref)) > 5  # not one repeated byte
        first = next((i for i, (a, b) in enumerate(zip(ref, fp32)) if a != b), None)
        if first is not None:
            differs += 1
            assert gaps[first] > NEAR_TIE, (plen, seed)  # the cache decided it, not a float near-tie
        for gamma in (1, 3, 6):
            out, _ = dec.generate(prompt, 40, gamma=gamma)
            assert out == ref, (plen, seed, gamma)
            assert (out != fp32) == (first is not None)
    assert differs >= 2  # sanity: in this setup the x8 cache changes the greedy tokens


def test_verify_passes_see_the_autoregressive_cache(tiny: OpenELM, monkeypatch) -> None:
    """Every verifier logit row for a committed input equals the one-token pass of the verifier view: the draft
    length is capped at flush points (without the cap rows after a flush differ by ~1e-2)."""
    dec = QuantSpecDecoder(tiny, kv_group=8, residual=8)
    prompt = _prompt(20, 7)
    passes: list[tuple[int, list[int], torch.Tensor]] = []
    real = QuantSpecDecoder._pass

    def spy(net, tokens, views, draft):
        start = len(views)
        logits = real(net, tokens, views, draft)
        if not draft:
            passes.append((start, list(tokens), logits))
        return logits
    monkeypatch.setattr(QuantSpecDecoder, "_pass", staticmethod(spy))
    out, _ = dec.generate(prompt, 50, gamma=5)
    monkeypatch.setattr(QuantSpecDecoder, "_pass", staticmethod(real))
    seq = prompt + out
    ref = dec.cached_logits(seq, len(prompt))  # teacher-forced, chunked at flush points
    one = []
    views = dec._views()
    with torch.no_grad():
        dec._prefill(prompt, views)
        for i in range(len(prompt) - 1, len(seq) - 1):
            one.append(real(tiny, [seq[i]], views, False))
            views.commit()
    one = torch.cat(one)
    assert float((ref - one).abs().max()) < 1e-4
    rows = 0
    for start, toks, logits in passes[1:]:  # passes[0] is the prefill
        for j in range(len(toks)):
            if seq[start:start + j + 1] != toks[:j + 1]:
                break
            pos = start + j - (len(prompt) - 1)
            if pos < len(one):
                assert float((logits[j] - one[pos]).abs().max()) < 1e-4
                rows += 1
    assert rows == len(one)


def test_store_never_holds_rejected_tokens(tiny: OpenELM, monkeypatch) -> None:
    """Layer-0 K/V depend only on (token, position): the stored x8 codes must reconstruct the committed tokens'."""
    made = []
    real_views = QuantSpecDecoder._views
    monkeypatch.setattr(QuantSpecDecoder, "_views", lambda self: made.append(real_views(self)) or made[-1])
    dec = QuantSpecDecoder(tiny, kv_group=8, residual=8)
    prompt = _prompt(12, 3)
    out, st = dec.generate(prompt, 60, gamma=6)
    assert st.corrected >= 2  # drafts were rejected along the way
    cache = made[-1].cache
    n = cache.store_len
    seq = prompt + out
    assert n >= 40 and n % 8 == 0 and len(cache) == len(seq) - 1
    k8, v8 = cache.view(8)[0]

    @torch.no_grad()
    def error(tokens: list[int]) -> float:
        k, v = tiny.forward_cached(torch.tensor([tokens]), None)[1][0]
        return max(float((k8[:, :, :n] - k[:, :, :n]).abs().max()), float((v8[:, :, :n] - v[:, :, :n]).abs().max()))
    assert error(seq[:n]) < 0.05
    wrong = list(seq[:n])
    wrong[n // 2] = (wrong[n // 2] + 1) % 256
    assert error(wrong) > 0.2  # the check sees a single foreign token


def test_sparse_kv_draft_is_exact_against_fp_verifier(tiny: OpenELM) -> None:
    dec = QuantSpecDecoder(tiny, draft_kv="sparse", sink=2, recent=6)
    prompt = _prompt(20, 11)
    plain = [e.tokens[0] for e in dec.plain_stream(prompt, 30)]
    out, st = dec.generate(prompt, 30, gamma=4)
    assert out == plain and 0 < st.acceptance_rate < 1
    with pytest.raises(EdgeZooError):
        QuantSpecDecoder(tiny, draft_kv="window")


def _chi2_of(tokens: torch.Tensor, p: torch.Tensor) -> float:
    return chi2_gof(torch.bincount(tokens, minlength=len(p)), p)[2]


@pytest.mark.parametrize("top_k,top_p", [(0, 1.0), (5, 0.8)])
def test_acceptance_rule_is_lossless(top_k: int, top_p: float) -> None:
    """20,000 draws: x ~ q, accept min(1, p/q), else resample normalize(max(0, p - q)) -> tokens ~ p."""
    g = torch.Generator().manual_seed(0)
    lp, lq = torch.randn(12, generator=g) * 1.5, torch.randn(12, generator=g) * 1.5
    p, q = filtered_probs(lp, 1.0, top_k, top_p), filtered_probs(lq, 1.0, top_k, top_p)
    x = torch.multinomial(q, 20_000, replacement=True, generator=g)
    accepted, tokens = speculative_accept(p, q, x, g)
    assert _chi2_of(tokens, p) > 0.01
    assert float(accepted.float().mean()) == pytest.approx(float(torch.minimum(p, q).sum()), abs=0.015)
    assert _chi2_of(x, p) < 1e-6  # wrong rule "accept always" gives q
    if top_k == 0:
        naive = torch.where(accepted, x, torch.multinomial(p, len(x), replacement=True, generator=g))
        assert _chi2_of(naive, p) < 1e-3  # wrong rule "resample from p" is biased towards q


def _first_tokens(dec: QuantSpecDecoder, prompt: list[int], draws: int) -> torch.Tensor:
    return torch.tensor([next(dec.stream(prompt, 2, gamma=1, temperature=1.0, seed=s)).tokens[0] for s in range(draws)])


def test_sampling_end_to_end_matches_verifier(peaked: OpenELM, monkeypatch) -> None:
    dec = QuantSpecDecoder(peaked)
    prompt = _prompt(8, 5)  # below 2R: the verifier view is the fp cache
    with torch.no_grad():
        p = filtered_probs(peaked(torch.tensor([prompt]))[0, -1], 1.0, 0, 1.0)
        q = filtered_probs(dec.draft(torch.tensor([prompt]))[0, -1], 1.0, 0, 1.0)
    assert 0.5 * float((p - q).abs().sum()) > 0.1  # draft and verifier differ: the test has power
    assert _chi2_of(_first_tokens(dec, prompt, 300), p) > 0.01

    def accept_always(p, q, x, gen):
        return torch.ones(len(x), dtype=torch.bool), x
    monkeypatch.setattr(spec, "speculative_accept", accept_always)
    assert _chi2_of(_first_tokens(dec, prompt, 300), p) < 0.01


def test_stream_api_and_stats(tiny: OpenELM) -> None:
    dec = QuantSpecDecoder(tiny, kv_group=8, residual=8)
    prompt = _prompt(9, 2)
    events = list(dec.stream(prompt, 23, gamma=4, temperature=0.8, top_k=40, top_p=0.95, seed=3))
    tokens = [t for e in events for t in e.tokens]
    assert len(tokens) == 23 and all(len(e.tokens) == len(e.kinds) for e in events)
    assert all(k in ("accepted", "corrected", "bonus") for e in events for k in e.kinds)
    assert all(e.kinds[-1] in ("corrected", "bonus") and set(e.kinds[:-1]) <= {"accepted"} for e in events)
    assert (tokens, events[-1].stats.new_tokens) == (dec.generate(prompt, 23, 4, 0.8, 40, 0.95, seed=3)[0], 23)
    st = events[-1].stats
    assert st.verify_passes == len(events) and st.drafted == sum(st.per_position_drafted) == st.draft_passes
    assert st.accepted == sum(st.per_position_accepted) == sum(e.kinds.count("accepted") for e in events)
    assert st.per_position_drafted[0] >= st.per_position_drafted[-1] and len(st.per_position_drafted) == 4
    assert [e.stats.new_tokens for e in events] == sorted(e.stats.new_tokens for e in events)  # snapshots
    d = st.to_dict()
    for key in ("acceptance_rate", "tokens_per_s", "verify_passes_per_token", "cost_ratio", "token_acceptance"):
        assert key in d and math.isfinite(d[key])
    assert st.verify_passes_per_token < 1 and st.seconds >= st.prefill_seconds > 0
    assert math.isnan(SpecStats().acceptance_rate)


def test_plain_stream_is_the_fp32_baseline(tiny: OpenELM) -> None:
    dec = QuantSpecDecoder(tiny)
    prompt = _prompt(7, 4)
    events = list(dec.plain_stream(prompt, 12))
    ref = generate(tiny, torch.tensor([prompt]), 12)[0].tolist()
    assert [e.tokens[0] for e in events] == ref and all(e.kinds == ["plain"] for e in events)
    assert events[-1].stats.verify_passes_per_token == 1.0
    with pytest.raises(EdgeZooError):
        list(dec.plain_stream([], 3))


def test_draft_weights_and_filters(tiny: OpenELM) -> None:
    full = QuantSpecDecoder(tiny)
    mlp = QuantSpecDecoder(tiny, draft_layers="mlp")
    qkv = "transformer.layers.0.attn.qkv_proj.weight"
    ffn = "transformer.layers.0.ffn.proj_1.weight"
    sd, sf, sm = tiny.state_dict(), full.draft.state_dict(), mlp.draft.state_dict()
    assert not torch.equal(sf[qkv], sd[qkv]) and torch.equal(sm[qkv], sd[qkv]) and not torch.equal(sm[ffn], sd[ffn])
    assert torch.equal(sf["transformer.token_embeddings.weight"], sd["transformer.token_embeddings.weight"])
    assert full.weight_report["method"] == "rtn4-asym-g32"
    with pytest.raises(EdgeZooError):
        QuantSpecDecoder(tiny, draft_layers="attn")
    logits = torch.randn(3, 50)
    probs = filtered_probs(logits, 0.7, 10, 0.9)
    g = torch.Generator().manual_seed(0)
    draw = make_sampler(0.7, 10, 0.9, g)
    for _ in range(20):  # the sampler never leaves the support filtered_probs keeps
        assert bool((probs.gather(1, draw(logits)[:, None]) > 0).all())
    assert torch.equal(filtered_probs(logits, 0.0, 0, 1.0).argmax(-1), logits.argmax(-1))
    b = full.kv_cache_bytes(512)
    assert set(b) >= {"quantspec", "fp16", "fp32"} and b["quantspec"] < b["fp16"] < b["fp32"]


def test_speedup_formulas() -> None:
    assert tokens_per_verify(0.0, 4) == 1.0 and tokens_per_verify(1.0, 4) == 5.0
    assert tokens_per_verify(0.5, 2) == pytest.approx(1.75)
    assert analytic_speedup(0.9, 5, 0.0) == pytest.approx((1 - 0.9 ** 6) / 0.1)
    assert analytic_speedup(0.5, 4, 1.0) < 1 < analytic_speedup(0.9, 4, 0.1)
    assert chi2_gof(torch.tensor([0, 5]), torch.tensor([1.0, 0.0]))[2] == 0.0
