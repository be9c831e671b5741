"""DynaMoE: nested experts on OpenELM, the conversion's phases (reordering keeps the dense function, labels, routing
rule, active-parameter count), resumption after a killed run, the claim's verdicts and its quick smoke run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from models import checkpoint
from models.dynamoe import DynaMoE, ModelArgs, active_fraction, active_params, expert_sizes
from models.openelm import ModelArgs as DenseArgs
from models.openelm import OpenELM
from trainers.claims import seed_summary
from trainers.dynamoe.claim import oracle_order, same_histogram, verdict
from trainers.dynamoe.convert import convert, difficulty, from_dense, label_tokens, reorder_, routed_eval
from trainers.dynamoe.recipe import DynaMoERecipe, recipe_from_dict
from trainers.recipe import read_recipe_yaml

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "trainers" / "dynamoe" / "configs" / "dynamoe_tiny.yaml"
DENSE = DenseArgs(model_dim=32, num_transformer_layers=2, head_dim=8, qkv_multipliers=(1.0, 1.0),
                  ffn_multipliers=(4.0, 4.0), max_context_length=64)


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def dense_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("dense") / "openelm"
    checkpoint.save(OpenELM(DENSE), out, {})
    return out


def tiny_recipe(dense: Path, **over) -> DynaMoERecipe:
    data, path = read_recipe_yaml(TINY)
    return recipe_from_dict({**data, "dense_checkpoint": str(dense), **over}, str(path))


def windows(n: int = 4, t: int = 17) -> torch.Tensor:
    return torch.randint(0, 256, (n, t), generator=torch.Generator().manual_seed(1))


def test_expert_sizes_and_bad_fractions() -> None:
    assert expert_sizes(128, (0.25, 0.5, 0.75, 1.0)) == [32, 64, 96, 128]
    for bad in [(0.3, 1.0), (0.5, 0.25, 1.0), (0.25, 0.5)]:
        with pytest.raises(ValueError):
            expert_sizes(128, bad)


def test_reordering_keeps_the_dense_function_and_sorts_units(dense_ckpt: Path) -> None:
    model = from_dense(dense_ckpt, tiny_recipe(dense_ckpt))
    w = windows()
    model.set_mode("fixed")
    before = model(w[:, :-1])
    scores = reorder_(model, w, progress=False)
    assert torch.allclose(model(w[:, :-1]), before, atol=1e-5)
    assert all(s == sorted(s, reverse=True) for s in scores)


def test_masked_routes_equal_sliced_experts() -> None:
    torch.manual_seed(0)
    model = DynaMoE(ModelArgs.tiny()).eval()
    x = windows()[:, :-1]
    for e in range(4):
        model.set_mode("fixed", e)
        sliced = model(x)
        model.set_mode("assign", assigned=[torch.full(x.shape, e)] * 2)
        assert torch.allclose(model(x), sliced, atol=1e-5)


def test_theta_rule_and_active_count() -> None:
    torch.manual_seed(0)
    model = DynaMoE(ModelArgs.tiny()).eval()
    w = windows()
    fractions = []
    for theta in (0.0, 0.3, 0.6, 1.0):
        _, choice = routed_eval(model, w, theta=theta)
        fractions.append(active_fraction(model, choice))
    assert fractions == sorted(fractions)
    _, low = routed_eval(model, w, theta=0.0)
    assert all(bool((c == 0).all()) for c in low)  # theta 0: the smallest expert everywhere
    _, high = routed_eval(model, w, theta=1.0)
    d, hidden, experts = 32, 128, 4
    router = d * experts + experts
    full = (3 * d * hidden + router) / (3 * d * hidden)  # the router is charged on top of the full FFN
    assert all(bool((c == 3).all()) for c in high) and active_fraction(model, high) == pytest.approx(full)
    info = active_params(model, high)
    assert info["active_params_per_token"] == pytest.approx(info["total_params"])  # theta 1: every parameter works
    with pytest.raises(ValueError):
        model.set_theta(1.5)


def test_labels_pick_the_smallest_good_enough_expert() -> None:
    torch.manual_seed(0)
    model = DynaMoE(ModelArgs.tiny()).eval()
    x = torch.randn(50, 32)
    ffn = model.ffns()[0]
    labels, rel = difficulty(ffn, x, tau=0.5)
    assert bool((rel[:, -1] == 0).all())
    for lab, r in zip(labels.tolist(), rel.tolist()):
        assert r[lab] <= 0.5 and all(v > 0.5 for v in r[:lab])
    data = label_tokens(model, windows(), 0.1, "loss_increase")
    assert len(data) == 2 and data[0]["x"].shape == (64, 32) and data[0]["rel"].shape == (64, 4)


def test_same_histogram_and_oracle_order() -> None:
    choice = torch.tensor([[3, 0, 1], [2, 3, 0]])
    order = torch.tensor([5, 4, 3, 2, 1, 0])
    out = same_histogram(choice, order)
    assert sorted(out.reshape(-1).tolist()) == sorted(choice.reshape(-1).tolist())
    assert out.reshape(-1).tolist() == [3, 3, 2, 1, 0, 0]
    lab = {"labels": torch.tensor([2, 0, 0]), "rel": torch.tensor([[0.9] * 4, [0.5] * 4, [0.1] * 4])}
    assert oracle_order(lab).tolist() == [2, 1, 0]


def _measured(router, random, oracle, monotone=(1.0, 1.0, 1.0)) -> dict:
    return {"router bpb at theta*": seed_summary(router), "random bpb at theta*": seed_summary(random),
            "oracle bpb at theta*": seed_summary(oracle), "monotone": seed_summary(list(monotone)),
            "FFN fraction at theta*": seed_summary([0.5] * len(router))}


@pytest.mark.parametrize("case,want", [
    (dict(router=[2.0, 2.1, 2.05], random=[2.2, 2.3, 2.25], oracle=[1.9, 2.0, 1.95]), "pass"),
    (dict(router=[2.3, 2.4, 2.35], random=[2.2, 2.3, 2.25], oracle=[1.9, 2.0, 1.95]), "fail"),
    (dict(router=[2.0, 2.1, 2.05], random=[2.2, 2.3, 2.25], oracle=[2.1, 2.2, 2.15]), "fail"),
    (dict(router=[2.0, 2.1, 2.05], random=[2.2, 2.3, 2.25], oracle=[1.9, 2.0, 1.95], monotone=(1.0, 0.0, 1.0)),
     "fail")])
def test_verdicts(case: dict, want: str) -> None:
    assert verdict(_measured(**case))[0] == want


def test_quick_verdict_is_inconclusive_on_one_seed() -> None:
    assert verdict(_measured([2.0], [2.2], [1.9], (1.0,)), quick=True)[0] == "inconclusive"


def _run_convert(recipe: Path, out: Path, dense: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "trainers.dynamoe.convert", str(recipe), str(out),
                             f"dense_checkpoint={dense}", "finetune_steps=16", "save_every=4"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_an_interrupted_finetune_resumes_to_the_same_weights(dense_ckpt: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import trainers.dynamoe.convert as conv
    from trainers.text import load_text

    r = tiny_recipe(dense_ckpt, finetune_steps=5, save_every=2, batch_size=4, context=16)
    corpus, real = load_text(), conv.save_state

    def save_then_stop(*args) -> None:
        real(*args)
        raise KeyboardInterrupt

    monkeypatch.setattr(conv, "save_state", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        conv.finetune(from_dense(dense_ckpt, r), r, corpus, tmp_path / "state", progress=False)
    monkeypatch.setattr(conv, "save_state", real)
    probe = from_dense(dense_ckpt, r)
    assert conv.load_state(tmp_path / "state", probe, torch.optim.AdamW(probe.parameters())) == 2
    resumed, straight = from_dense(dense_ckpt, r), from_dense(dense_ckpt, r)  # the state restores the weights
    conv.finetune(resumed, r, corpus, tmp_path / "state", progress=False)
    conv.finetune(straight, r, corpus, tmp_path / "straight", progress=False)
    a, b = resumed.state_dict(), straight.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in b)


@pytest.mark.slow
def test_a_killed_conversion_resumes_to_the_same_weights(dense_ckpt: Path, tmp_path: Path) -> None:
    """A real kill (SIGKILL of the conversion process mid fine-tune), then the same command again."""
    proc = _run_convert(TINY, tmp_path / "killed", dense_ckpt)
    state = tmp_path / "killed" / "work" / "finetune_state" / "state.json"
    deadline = time.monotonic() + 120
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert state.exists() and not (tmp_path / "killed" / checkpoint.CARD).exists()  # killed mid fine-tune
    recipe = tiny_recipe(dense_ckpt, finetune_steps=16, save_every=4)
    convert(recipe, tmp_path / "killed", progress=False)
    convert(recipe, tmp_path / "straight", progress=False)
    resumed, straight = (checkpoint.load(tmp_path / n)[0].state_dict() for n in ("killed", "straight"))
    assert all(torch.equal(resumed[k], straight[k]) for k in straight)
    assert not (tmp_path / "killed" / "work" / "finetune_state").exists()


def test_quick_claim_is_a_labelled_smoke_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trainers.dynamoe.claim import reproduce

    monkeypatch.setenv("EDGEZOO_CACHE", str(tmp_path))
    result = reproduce(quick=True)
    assert result.verdict.endswith("(quick)") and result.seeds == [0]
    assert result.measured["monotone"]["mean"] == 1.0
    assert 0.0 < result.measured["FFN fraction at theta*"]["mean"] < 1.1
