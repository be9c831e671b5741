"""SALSA (card 05): the programmatic reward, the soup, KL-shaped policy optimization with exact resume after a kill,
the stages as checkpoints with their lineage, reward/KL/win rate measured through a runtime, the dashboard's curves,
the claim's verdict table and its quick smoke run."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from models import checkpoint
from models.errors import RecipeError
from models.openelm import ModelArgs, OpenELM
from trainers.claims import seed_summary
from trainers.salsa import claim as C
from trainers.salsa.recipe import recipe_from_dict
from trainers.salsa.reward import heldout_prompts, score
from trainers.salsa.rl import RLConfig, matched_kl_reward, optimize, win_rate
from trainers.salsa.soup import check_soup_parents, interpolate
from trainers.salsa.train import train
from trainers.text import load_text

ROOT = Path(__file__).resolve().parents[2]
TINY = {"model_dim": 16, "num_transformer_layers": 2, "head_dim": 8, "max_context_length": 64}
SMALL = {"prompt_len": 8, "new_tokens": 16, "profile_prompts": 4, "profile_samples": 2, "threads": 1}
POLICY = {"updates": 4, "rl_batch": 4, "rl_lr": 1e-3, "ckpt_every": 2, "curve_prompts": 4, "eval_prompts": 4, "eval_samples": 2}


def tiny_model(seed: int = 0, **args: int) -> OpenELM:
    torch.manual_seed(seed)
    return OpenELM(dataclasses.replace(ModelArgs.isotropic(), **{**TINY, **args}))


# ----------------------------------------------------------------------------------------------------- reward

@pytest.mark.parametrize("text,want", [
    (b"def f(x): return x", 2), (b"define a classic forum", 0), (b"for_each with", 1), (b"yield\x00", 0),
    ("é".encode(), -2), (b"import lambda class", 3), (b"", 0)])
def test_reward_counts_whole_keywords_and_nonprintable_bytes(text: bytes, want: float) -> None:
    assert score(text) == want


def test_heldout_prompts_are_fixed_validation_windows() -> None:
    val = load_text().val
    a, b = heldout_prompts(val, 200, 32), heldout_prompts(val, 200, 32)
    assert a.shape == (200, 32) and torch.equal(a, b)
    assert bytes(a[0].tolist()) == val[:32].tobytes()


def test_win_rate_counts_ties_half_and_matched_kl_interpolates() -> None:
    assert win_rate([1.0, 2.0, 0.0], [0.0, 2.0, 1.0]) == pytest.approx(0.5)
    curve = [{"kl": 0.0, "reward": 0.0}, {"kl": 0.2, "reward": 2.0}, {"kl": 0.1, "reward": 1.5}]
    assert matched_kl_reward(curve, 0.15) == pytest.approx(1.75)


# ----------------------------------------------------------------------------------------------------- soup

def test_soup_averages_every_entry_and_alpha_one_is_the_first_parent() -> None:
    a, b = tiny_model(0), tiny_model(1)
    soup = interpolate(a, b, 0.5)
    for k, v in soup.state_dict().items():
        assert torch.allclose(v, (a.state_dict()[k] + b.state_dict()[k]) / 2), k
    assert all(torch.equal(v, a.state_dict()[k]) for k, v in interpolate(a, b, 1.0).state_dict().items())


def test_soup_refuses_parents_of_different_shapes() -> None:
    a = tiny_model()
    b = tiny_model(model_dim=32)
    with pytest.raises(RecipeError, match="differ in|different"):
        check_soup_parents(a, b)


# ----------------------------------------------------------------------------------------------------- recipes

@pytest.mark.parametrize("data,mentions", [
    ({"stage": "policy", "reference": "x", "beta": -0.1}, "beta"),
    ({"stage": "policy", "reference": "x", "beta": 11.0}, "beta"),
    ({"stage": "policy", "reference": "x", "beta": float("nan")}, "beta"),
    ({"stage": "policy", "reference": "x", "keywords": "rust"}, "keyword list 'rust'"),
    ({"stage": "policy"}, "reference"),
    ({"stage": "soup", "parents": ["a"]}, "two parents"),
    ({"stage": "sft"}, "base"),
    ({"stage": "mix"}, "stage"),
    ({"stage": "policy", "reference": "x", "alpha": 1.5}, "alpha"),
    ({"stage": "policy", "reference": "x", "betta": 0.1}, "unknown keys")])
def test_bad_recipes_are_one_line_errors(data: dict, mentions: str) -> None:
    with pytest.raises(RecipeError) as e:
        recipe_from_dict(data)
    assert mentions in str(e.value) and "\n" not in str(e.value)


# ----------------------------------------------------------------------------------------------------- stages

def build_zoo(root: Path) -> Path:
    """base -> sft1, sft2 -> soup -> policy, each a checkpoint in one zoo (tiny settings)."""
    pre = {"preset": "isotropic", "model_args": TINY, "steps": 4, "batch_size": 4, "context": 32, "warmup": 1,
           "eval_every": 4, "eval_windows": 4}
    stages = {"base": {"stage": "base", "pretrain": pre},
              "sft1": {"stage": "sft", "base": "base", "sft_steps": 3, "sft_batch": 4, "sft_context": 32, "data_seed": 1},
              "sft2": {"stage": "sft", "base": "base", "sft_steps": 3, "sft_batch": 4, "sft_context": 32, "data_seed": 2},
              "soup": {"stage": "soup", "parents": ["sft1", "sft2"], "sft_context": 32},
              "policy": {"stage": "policy", "reference": "soup", **POLICY}}
    for name, data in stages.items():
        train(recipe_from_dict({"name": name, **data, **SMALL}), root / name)
    return root


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_zoo(tmp_path_factory.mktemp("salsa-zoo"))


def test_stages_record_lineage_and_quality_eval(zoo: Path) -> None:
    soup = checkpoint.read_card(zoo / "soup")
    hashes = [p["checkpoint_sha256"] for p in soup["salsa"]["parents"]]
    assert hashes == [checkpoint.checkpoint_hash(zoo / "sft1"), checkpoint.checkpoint_hash(zoo / "sft2")]
    assert [p["alpha"] for p in soup["salsa"]["interpolation"]] == [0.0, 0.25, 0.5, 0.75, 1.0]
    pol = checkpoint.read_card(zoo / "policy")
    assert pol["salsa"]["reference"]["checkpoint_sha256"] == checkpoint.checkpoint_hash(zoo / "soup")
    assert [p["update"] for p in pol["salsa"]["curve"]] == [0, 2, 4]
    assert pol["salsa"]["curve"][0]["kl"] == pytest.approx(0.0, abs=1e-6)  # the policy starts at its reference
    settings = pol["quality_eval"]["settings"]
    assert settings["reference"]["path"] == str(zoo / "soup") and settings["anchor"]["path"] == str(zoo / "base")
    assert not (zoo / "policy" / "rl_state").exists()


def test_soup_of_mismatched_parents_writes_nothing(zoo: Path, tmp_path: Path) -> None:
    other = tiny_model(model_dim=32)
    checkpoint.save(other, zoo / "wide", {})
    with pytest.raises(RecipeError, match="differ|different"):
        train(recipe_from_dict({"name": "bad_soup", "stage": "soup", "parents": ["sft1", "wide"], **SMALL}),
              zoo / "bad_soup")
    assert not (zoo / "bad_soup").exists()


def test_artifact_quality_through_a_runtime(zoo: Path) -> None:
    """The LM profiler's child adds reward, KL and win rate to the bpb quality block of a SALSA artifact."""
    from exporters.artifact import export_checkpoint
    from profiles import lm_measure

    out = export_checkpoint(zoo / "policy", "torch", "none", workspace=zoo.parent / "ws").path
    req = lm_measure.lm_request(out, "torch", threads=1, prompt_len=8, new_tokens=4, context=32, eval_windows=4,
                                repeats=1)
    assert req["quality_eval"]["settings"]["prompts"] == 4
    acc = lm_measure.child(req)["accuracy"]
    assert acc["metric"] == "bits_per_byte" and acc["reward_n"] == 8
    assert acc["kl_to_reference"] >= 0 and 0 <= acc["win_rate_vs_base"] <= 1
    from profiles.record import Quality

    assert Quality.from_dict(acc).reward == acc["reward"]


def test_dashboard_curves_come_from_the_records_checkpoints(zoo: Path) -> None:
    from trainers.salsa import dashboard

    recs = pd.DataFrame([{"id": 1, "artifact.checkpoint": str(zoo / "policy"), "artifact.format": "onnx",
                          "artifact.compression": "none", "accuracy.value": 3.9, "accuracy.reward": -0.5,
                          "status": "ok"},
                         {"id": 2, "artifact.checkpoint": str(zoo / "soup"), "artifact.format": "onnx",
                          "artifact.compression": "none", "accuracy.value": 3.8, "status": "ok"}])
    figs = dashboard.figures(recs)
    assert set(figs) == {"reward_kl", "barrier"}
    assert list(dashboard.checkpoint_table(recs)["checkpoint"]) == ["policy", "soup"]
    assert dashboard.figures(pd.DataFrame()) == {}


# ----------------------------------------------------------------------------------------------------- resume

def _policy_recipe(folder: Path, updates: int) -> Path:
    path = folder / "policy.yaml"
    path.write_text(yaml.safe_dump({"name": "policy", "stage": "policy", "reference": "soup", **SMALL, **POLICY,
                                    "updates": updates, "ckpt_every": 3, "new_tokens": 24, "rl_batch": 8}))
    return path


def test_an_interrupted_policy_run_resumes_exactly(zoo: Path, tmp_path: Path) -> None:
    """Interrupted right after its update-2 state is saved, the rerun starts at update 2 and ends with the weights
    of an uninterrupted run."""
    torch.set_num_threads(1)
    ref, corpus = checkpoint.load(zoo / "soup")[0], load_text()
    cfg = RLConfig(updates=4, batch=4, ckpt_every=2, curve_prompts=2, prompt_len=8, new_tokens=8, lr=1e-3)

    def stop(update: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        optimize(ref, cfg, corpus.train, corpus.val, state_dir=tmp_path, on_checkpoint=stop)
    seen: list[int] = []
    pol, curve = optimize(ref, cfg, corpus.train, corpus.val, state_dir=tmp_path, on_checkpoint=seen.append)
    whole, whole_curve = optimize(ref, cfg, corpus.train, corpus.val)
    assert seen == [4] and curve == whole_curve
    assert all(torch.equal(v, whole.state_dict()[k]) for k, v in pol.state_dict().items())


@pytest.mark.slow
def test_a_killed_policy_run_resumes_from_its_last_checkpoint(zoo: Path, tmp_path: Path) -> None:
    """Kill the run once its first state is saved; the rerun resumes there and ends where an uninterrupted run
    ends (sampling seeds and prompts depend on the update only)."""
    recipe = _policy_recipe(tmp_path, updates=12)
    out = zoo / "policy_killed"
    proc = subprocess.Popen([sys.executable, "-m", "trainers.salsa.train", str(recipe), str(out)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / "rl_state" / "state.json"
    deadline = time.monotonic() + 120
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = json.loads(state.read_text())["update"]
    assert 3 <= saved < 12 and not (out / "model.safetensors").exists()
    from trainers.salsa.recipe import load_recipe

    r = load_recipe(recipe)
    torch.set_num_threads(1)
    ref = checkpoint.load(zoo / "soup")[0]
    corpus = load_text()
    from trainers.salsa.train import rl_config

    resumed_from = []
    pol, curve = optimize(ref, rl_config(r), corpus.train, corpus.val, state_dir=out,
                          ref_id=checkpoint.checkpoint_hash(zoo / "soup"), on_checkpoint=resumed_from.append)
    assert resumed_from[0] == saved + 3  # no update before the saved one ran again
    whole, whole_curve = optimize(ref, rl_config(r), corpus.train, corpus.val)
    assert [p["update"] for p in curve] == [p["update"] for p in whole_curve]
    for k, v in pol.state_dict().items():
        assert torch.allclose(v, whole.state_dict()[k], atol=1e-6), k


def test_a_state_of_another_run_is_not_resumed(zoo: Path, tmp_path: Path) -> None:
    ref = checkpoint.load(zoo / "soup")[0]
    corpus = load_text()
    cfg = RLConfig(updates=2, batch=2, ckpt_every=1, curve_prompts=2, prompt_len=8, new_tokens=4)
    optimize(ref, cfg, corpus.train, corpus.val, state_dir=tmp_path)
    seen = []
    optimize(ref, RLConfig(**{**cfg.__dict__, "beta": 0.1}), corpus.train, corpus.val, state_dir=tmp_path,
             on_checkpoint=seen.append)
    assert seen == [1, 2]  # a different beta starts from update 0


# ----------------------------------------------------------------------------------------------------- claim

def _measured(**means: float) -> dict:
    base = {"soup_val_bpb": 3.0, "sft_endpoints_val_bpb": 3.1, "reward_salsa": 1.0, "reward_baseline": 0.5,
            "kl_salsa": 0.1, "kl_baseline": 0.1, "win_rate_salsa_vs_baseline": 0.6, "matched_kl": 0.1,
            "matched_reward_salsa": 1.0, "matched_reward_baseline": 0.5}
    return {k: seed_summary([v, v, v]) for k, v in {**base, **means}.items()}


@pytest.mark.parametrize("means,want", [
    ({}, "pass"), ({"soup_val_bpb": 3.2}, "fail"), ({"reward_salsa": 0.4}, "fail"),
    ({"matched_reward_salsa": 0.4}, "fail"), ({"reward_salsa": 0.5}, "fail")])
def test_verdict_table(means: dict, want: str) -> None:
    assert C.verdict(_measured(**means))[0] == want


@pytest.mark.slow
def test_quick_claim_is_a_labelled_smoke_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEZOO_CACHE", str(tmp_path))
    monkeypatch.setitem(C.QUICK, "pretrain", {**C.QUICK["pretrain"], "steps": 4, "eval_every": 4})
    monkeypatch.setitem(C.QUICK, "rl", {**C.QUICK["rl"], "updates": 2, "ckpt_every": 1})
    res = C.reproduce(quick=True)
    assert res.verdict.endswith("(quick)") and "smoke test" in res.claim and res.seeds == [0]
    assert {"reward_salsa", "reward_baseline", "matched_reward_salsa", "barrier_at_half"} <= set(res.measured)
    assert json.loads((tmp_path / "claims" / "salsa" / "curves-quick.json").read_text())["0"]["reward_kl"]
