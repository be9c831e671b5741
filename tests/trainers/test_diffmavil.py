"""Diffusion MAViL (card 12): the card's pitfalls as tests (only masked patches noised, per-patch normalisation
before noising, the timestep embedding reaching the decoder, FLOPs counted per token), the FLOPs counter against a
hand count and against torch's FlopCounterMode on the real network, the curriculum / adaptive-batch plan, the data
generator, the deployable audio encoder, recipes, the verdict table and a quick claim."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from models.audio_video_mae import (AudioEncoderArgs, AudioEncoderClassifier, AudioVideoMAE, AudioVideoMAEArgs,
                                    Decoder, patchify, patchify_video, take)
from models.errors import RecipeError
from trainers.claims import seed_summary
from trainers.contrastive import LogitScale
from trainers.diffmavil import claim, flops
from trainers.data import load_digits
from trainers.diffmavil.data import FREQ_BINS, TIME_STEPS, load_av_digits, make_clips
from trainers.diffmavil.recipe import recipe_from_dict
from trainers.diffmavil.train import (batch_plan, cosine_alpha_bar, normalize_patches, random_masks, step_loss,
                                      step_lr)
from trainers.papers import get, recipe_trainer

ARM_A = {"decoder": "mask", "video_decoder": "self", "mask_ratio_end": 0.75, "adaptive_batch": False}
ARM_B = {"decoder": "diffusion", "video_decoder": "cross", "mask_ratio_end": 0.75, "adaptive_batch": False}


def _tiny(**kw) -> AudioVideoMAE:
    torch.manual_seed(0)
    return AudioVideoMAE(dataclasses.replace(AudioVideoMAEArgs.tiny(), **kw))


def _batch(b: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(b, 1, 16, 32, generator=g), torch.randn(b, 4, 16, 16, generator=g)


# ----------------------------------------------------------------------------------------------- FLOPs counter

def test_flops_counter_matches_a_hand_count() -> None:
    """dim 4, MLP 2x, one encoder layer, one fusion layer, 1-layer width-4 decoders, patch 4 (16 values),
    audio 32 tokens (r 0.75: 8 visible), video 64 tokens (16 visible)."""
    a = AudioVideoMAEArgs(dim=4, depth=1, heads=1, mlp_ratio=2.0, fusion_depth=1, decoder_dim=4, decoder_depth=1,
                          decoder_heads=1, embed_dim=2, decoder="diffusion", video_decoder="cross")
    # block(nq, nk): q 2*nq*4*4, kv 2*nk*4*8, proj 2*nq*4*4, scores + values 4*nq*nk*4, MLP 2 * 2*nq*4*8
    blk = lambda nq, nk: 32 * nq + 64 * nk + 32 * nq + 16 * nq * nk + 128 * nq  # noqa: E731
    enc_a = 2 * 8 * 16 * 4 + blk(8, 8)
    enc_v = 2 * 16 * 16 * 4 + blk(16, 16)
    fusion = blk(24, 24)
    # embed visible (2 nv 4 4), x_t (2 nm 16 4), time MLP (2*32*4 + 2*4*4), predict masked (2 nm 4 16)
    dec_a = 2 * 8 * 16 + 2 * 24 * 64 + (256 + 32) + 2 * 24 * 64 + blk(32, 32)       # self attention, 32 tokens
    dec_v = 2 * 16 * 16 + 2 * 48 * 64 + (256 + 32) + 2 * 48 * 64 + blk(48, 16)       # cross: 48 queries, 16 keys
    per = flops.forward_per_sample(a, 8, 16)
    assert per == {"audio_encoder": enc_a, "video_encoder": enc_v, "fusion": fusion, "audio_decoder": dec_a,
                   "video_decoder": dec_v, "contrastive": 2 * 2 * 4 * 2}
    step = flops.step_forward(a, 5, 0.75)
    assert step["fusion"] == 5 * fusion and step["contrastive"] == 5 * 32 + 2 * 25 * 2
    total = flops.training_flops(a, [(5, 0.75), (5, 0.75)])
    assert total["total"] == 3 * 2 * sum(step.values())


@pytest.mark.parametrize("arm", ["A", "B"])
def test_flops_counter_equals_torch_flop_counter_on_the_network(arm: str) -> None:
    """The per-token count is what torch's FlopCounterMode sees in one real forward step (batch 2: the contrastive
    similarity matrix is the only per-batch term)."""
    from torch.utils.flop_counter import FlopCounterMode

    kw = {"decoder": "mask", "video_decoder": "self"} if arm == "A" else {"decoder": "diffusion",
                                                                         "video_decoder": "cross"}
    model = _tiny(**kw)
    audio, video = _batch(2)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        step_loss(model, LogitScale(), audio, video, 0.75, cosine_alpha_bar(100), 0.1, torch.Generator())
    assert counter.get_total_flops() == sum(flops.step_forward(model.args, 2, 0.75).values())


def test_curriculum_saves_encoder_flops_and_cross_attention_saves_decoder_flops() -> None:
    counted = {}
    for arm, over in (("A", ARM_A), ("B", ARM_B), ("C", {})):
        r = recipe_from_dict({**over, "epochs": 2})
        counted[arm] = flops.training_flops(r.model_args(), batch_plan(r, 3000))
    assert counted["C"]["total"] < counted["B"]["total"] < counted["A"]["total"]
    assert counted["B"]["encoders"] == counted["A"]["encoders"] > counted["C"]["encoders"]
    assert counted["B"]["video_decoder"] < counted["A"]["video_decoder"]


# ----------------------------------------------------------------------------------------------- pitfalls

def test_patches_are_normalised_per_patch() -> None:
    x = torch.randn(2, 5, 16) * 3 + 7
    n = normalize_patches(x)
    assert torch.allclose(n.mean(-1), torch.zeros(2, 5), atol=1e-5)
    assert torch.allclose(n.var(-1, unbiased=False), torch.ones(2, 5), atol=1e-4)


def _captured_step(model: AudioVideoMAE, alpha_bar: torch.Tensor) -> dict:
    """One step_loss with the encoder's and the audio decoder's inputs recorded."""
    seen: dict = {}
    encode, decode = model.encode, model.audio_decoder.forward

    def spy_encode(a_p, a_idx, v_p, v_idx):
        seen.update(a_patches=a_p, a_idx=a_idx)
        return encode(a_p, a_idx, v_p, v_idx)

    def spy_decode(visible, vis_idx, masked_idx, noisy=None, t=None):
        seen.update(masked_idx=masked_idx, noisy=noisy, t=t)
        return decode(visible, vis_idx, masked_idx, noisy, t)

    model.encode, model.audio_decoder.forward = spy_encode, spy_decode
    audio, video = _batch()
    step_loss(model, LogitScale(), audio, video, 0.75, alpha_bar, 0.1, torch.Generator().manual_seed(1))
    seen["patches"] = patchify(audio, 4)
    return seen


def test_only_masked_patches_are_noised_after_normalisation() -> None:
    model = _tiny(decoder="diffusion", video_decoder="cross")
    clean = _captured_step(model, torch.ones(101))          # abar = 1: x_t is x0 itself
    assert torch.equal(clean["a_patches"], take(clean["patches"], clean["a_idx"]))  # visible: raw, never noised
    assert set(clean["a_idx"][0].tolist()).isdisjoint(clean["masked_idx"][0].tolist())
    assert clean["a_idx"].shape[1] == 8 and clean["masked_idx"].shape[1] == 24
    assert torch.allclose(clean["noisy"], normalize_patches(take(clean["patches"], clean["masked_idx"])))
    noisy = _captured_step(model, torch.full((101,), 0.5))  # the same masks and t: x_t moves off x0
    x0 = normalize_patches(take(noisy["patches"], noisy["masked_idx"]))
    eps = (noisy["noisy"] - 0.5 ** 0.5 * x0) / 0.5 ** 0.5
    assert 0.8 < eps.std().item() < 1.2 and abs(eps.mean().item()) < 0.2
    assert torch.equal(noisy["a_patches"], take(noisy["patches"], noisy["a_idx"]))
    assert ((noisy["t"] >= 1) & (noisy["t"] <= 100)).all()


@pytest.mark.parametrize("attention", ["self", "cross"])
def test_timestep_embedding_reaches_the_decoder(attention: str) -> None:
    torch.manual_seed(0)
    dec = Decoder((4, 8), 16, 16, 16, 2, 2, 2.0, "diffusion", attention).eval()
    g = torch.Generator().manual_seed(0)
    visible, noisy = torch.randn(2, 8, 16, generator=g), torch.randn(2, 24, 16, generator=g)
    vis, masked = random_masks(2, 32, 0.75, g)
    out = {t: dec(visible, vis, masked, noisy, torch.full((2,), t)) for t in (1, 50, 100)}
    assert not torch.allclose(out[1], out[50]) and not torch.allclose(out[50], out[100])
    dec(visible, vis, masked, noisy, torch.full((2,), 7)).sum().backward()
    assert dec.time.mlp[0].weight.grad.abs().sum() > 0


def test_cosine_alpha_bar() -> None:
    ab = cosine_alpha_bar(100)
    assert ab.shape == (101,) and ab[0] == 1 and (ab[1:] < ab[:-1]).all() and ab[100] < 1e-3
    f = lambda t: np.cos((t / 100 + 0.008) / 1.008 * np.pi / 2) ** 2  # noqa: E731
    assert ab[50].item() == pytest.approx(f(50) / f(0), rel=1e-4)


def test_curriculum_and_adaptive_batch_plan() -> None:
    c = recipe_from_dict({"epochs": 3, "batch_size": 64})
    plan = batch_plan(c, 3000)
    assert plan[0] == (64, 0.75) and plan[-1][1] == pytest.approx(0.9, abs=0.01) and plan[-1][0] <= 160
    assert 150 <= max(b for b, _ in plan) <= 160  # r(t) reaches 0.90 only at the very end
    seen = np.cumsum([b for b, _ in plan])
    assert seen[-1] == 9000 and {1000 * k for k in (3, 6, 9)} <= set(seen.tolist())  # no batch straddles an epoch
    ends = {1000 * k for k in (3, 6, 9)}
    for (b, r), upto in zip(plan, seen.tolist()):  # B(t) = B0 (1 - r0) / (1 - r(t)), epoch ends cut short
        assert b == round(64 * 0.25 / (1 - r)) or (upto in ends and b < round(64 * 0.25 / (1 - r)))
    fixed = batch_plan(recipe_from_dict({**ARM_A, "epochs": 1, "batch_size": 64}), 3000)
    assert {b for b, _ in fixed} == {64, 56} and {r for _, r in fixed} == {0.75}


def test_learning_rate_is_not_silently_rescaled() -> None:
    c = recipe_from_dict({})
    assert step_lr(c, 0, 100, 160) == step_lr(c, 0, 100, 64) == c.lr
    linear = recipe_from_dict({"lr_batch_scaling": "linear", "batch_size": 64})
    assert step_lr(linear, 0, 100, 160) == pytest.approx(2.5 * linear.lr)


# ----------------------------------------------------------------------------------------------- data, deployable

def test_generator_is_seeded_balanced_and_held_out() -> None:
    d = load_av_digits()
    assert (len(d.train.y), len(d.test.y)) == (3000, 1000) and np.bincount(d.test.y).tolist() == [100] * 10
    assert d.train.video.shape[1:] == (4, 16, 16) and d.train.audio.shape[1:] == (1, FREQ_BINS, TIME_STEPS)
    assert abs(d.train.audio.mean()) < 1e-4 and abs(d.train.video.std() - 1) < 1e-4  # standardised
    digits = load_digits()
    one, two = (make_clips(digits.test.x[:, 0], digits.test.y, 20, np.random.default_rng(3)) for _ in range(2))
    assert np.array_equal(one.audio, two.audio) and np.array_equal(one.video, two.video)  # seeded
    # class-coded bands: bins c and c + 6 are the loudest on average for class c
    for c in range(10):
        loud = d.train.audio[d.train.y == c, 0].mean((0, 2)).argsort()[-2:]
        assert set(loud.tolist()) == {c, c + 6}


def test_deployable_encoder_sees_every_token_through_the_same_weights() -> None:
    model = _tiny()
    audio, _ = _batch(2)
    idx = torch.arange(32).expand(2, -1)
    assert torch.allclose(model.audio.embed_all(audio), model.audio.embed_patches(patchify(audio, 4), idx),
                          atol=1e-5)
    net = AudioEncoderClassifier(model.args.audio_encoder())
    net.encoder.load_state_dict(model.audio.state_dict())
    assert net(audio).shape == (2, 10) and patchify_video(torch.randn(2, 4, 16, 16), 4).shape == (2, 64, 16)
    deploy = AudioEncoderArgs.deploy()
    assert (deploy.tokens, deploy.dim, deploy.depth, deploy.heads) == (512, 768, 12, 12)


# ----------------------------------------------------------------------------------------------- recipes, claim

BAD = [("mask_ratio=1.2", "mask_ratio"), ("mask_ratio_end=0.5", "mask_ratio_end"), ("timesteps=0", "timesteps"),
       ("decoder=gan", "decoder"), ("video_decoder=none", "video_decoder"), ("lr_batch_scaling=sqrt", "lr_batch"),
       ("dim=66", "heads"), ("epochs=0", "epochs"), ("batch_size=1", "batch_size"), ("lr=.nan", "lr"),
       ("contrastive_weight=-1", "contrastive_weight"), ("ratio=0.5", "unknown keys")]


@pytest.mark.parametrize("override,mentions", BAD)
def test_bad_recipe_values_through_the_loader(override: str, mentions: str) -> None:
    path, trainer, key = recipe_trainer("diffmavil_c")
    assert key == "diffmavil"
    with pytest.raises(RecipeError) as e:
        trainer(path, Path("unused"), [override], check_only=True)
    assert mentions in str(e.value) and e.value.fix and "\n" not in str(e.value)


def test_bundled_recipes_are_the_arms() -> None:
    paper = get("diffmavil")
    import yaml

    arms = {}
    for name in ("diffmavil_a", "diffmavil_b", "diffmavil_c"):
        arms[name] = recipe_from_dict(yaml.safe_load((paper.configs / f"{name}.yaml").read_text()))
    for name, over in (("diffmavil_a", ARM_A), ("diffmavil_b", ARM_B)):
        assert all(getattr(arms[name], k) == v for k, v in over.items())
    assert arms["diffmavil_c"].mask_ratio_end == 0.9 and arms["diffmavil_c"].adaptive_batch
    assert [d.recipe for d in paper.deployables] == ["configs/diffmavil_a.yaml", "configs/diffmavil_c.yaml"]


def _measured(flops_abc=(3.0, 2.5, 2.0), probe_a=(0.80, 0.82), probe_b=(0.79, 0.81), probe_c=(0.80, 0.80)) -> dict:
    out = {}
    for arm, f, p in zip(claim.ARMS, flops_abc, (probe_a, probe_b, probe_c)):
        out[f"{arm}/train_flops"] = seed_summary([f] * len(p))
        out[f"{arm}/audio_probe"] = seed_summary(list(p))
    return out


VERDICTS = [({}, "pass"), ({"flops_abc": (3.0, 2.0, 2.5)}, "fail"), ({"flops_abc": (2.0, 2.5, 1.0)}, "fail"),
            ({"probe_c": (0.70, 0.72)}, "fail"), ({"probe_b": (0.75, 0.77)}, "fail"),
            ({"probe_a": (0.8,), "probe_b": (0.8,), "probe_c": (0.8,)}, "inconclusive")]


@pytest.mark.parametrize("change,expected", VERDICTS)
def test_verdict_table(change: dict, expected: str) -> None:
    outcome, reason = claim.verdict(_measured(**change))
    assert outcome == expected and "C/A" in reason and "0.68" in reason


@pytest.mark.slow
def test_quick_claim_is_labelled() -> None:
    result = claim.reproduce(quick=True)
    assert result.quick and result.verdict.endswith("(quick)") and result.seeds == [0]
    assert result.verdict.startswith("inconclusive")  # FLOPs decide, the probes of one seed cannot
    assert {f"{arm}/audio_probe" for arm in claim.ARMS} <= set(result.measured)
    assert result.measured["C_curriculum/train_flops_over_A"]["mean"] < 1


def test_deployment_scale_selects_the_audio_encoder() -> None:
    from app import deploy
    from exporters.formats import task_of
    from models.registry import get

    assert deploy.select(("diffmavil",), None) == [("av_audio_encoder", "diffmavil")]
    assert task_of({"task": get("av_audio_encoder").task}) == "classification"  # exported as a classifier
