"""KL-regularized policy optimization (card 05, section 2): REINFORCE with per-token KL reward shaping.

Per update: `rl_batch` training prompts, one sampled continuation each (temperature `temperature`, the one sampler
of models.generation), per-token rewards r_t = -beta (log pi(y_t) - log pi_ref(y_t)) with the programmatic reward
added on the last token, returns G_t = sum_{t' >= t} r_t', advantages G_t minus the batch mean at the same position,
whitened; loss -mean(A_t log pi(y_t)). Sampling seeds and prompts are functions of (seed, update) only, so two arms
with the same seed see the same prompts and a resumed run continues exactly as an uninterrupted one.

Every `ckpt_every` updates: a reward-KL curve point on `curve_prompts` held-out prompts and a resumable state
(`rl_state/`: policy + AdamW state in safetensors, the update count and curve in JSON, each file replaced atomically).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from models.generation.generate import generate
from trainers.salsa.reward import heldout_prompts, score_batch, train_prompts

STATE = "rl_state"


@dataclass(frozen=True)
class RLConfig:
    updates: int = 200
    batch: int = 32
    lr: float = 3e-4
    beta: float = 0.05
    temperature: float = 1.0
    prompt_len: int = 32
    new_tokens: int = 64
    ckpt_every: int = 20
    curve_prompts: int = 64
    keywords: str = "python"
    seed: int = 0

    def key(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


def token_logprobs(model: nn.Module, prompts: torch.Tensor, cont: torch.Tensor,
                   full: bool = False) -> torch.Tensor:
    """log pi(y_t | prompt, y_<t) (B, T) of continuation `cont` (B, T); with `full`, log pi(. | ...) (B, T, V)."""
    seq = torch.cat([prompts, cont], 1)
    logits = model(seq[:, :-1])[:, prompts.shape[1] - 1:].float()  # the positions that predict cont
    logp = F.log_softmax(logits, -1)
    return logp if full else logp.gather(-1, cont[..., None])[..., 0]


@torch.no_grad()
def sample(model: nn.Module, prompts: torch.Tensor, new_tokens: int, temperature: float, seed: int) -> torch.Tensor:
    return generate(model.eval(), prompts, new_tokens, temperature=temperature, seed=seed)


@torch.no_grad()
def kl_per_token(policy: nn.Module, ref: nn.Module, prompts: torch.Tensor, cont: torch.Tensor) -> float:
    """Mean over sampled positions of the exact KL(pi(.|ctx) || pi_ref(.|ctx)) in nats."""
    return exact_kl(token_logprobs(policy, prompts, cont, full=True), token_logprobs(ref, prompts, cont, full=True))


def exact_kl(lp: torch.Tensor, lq: torch.Tensor) -> float:
    """Mean over positions of sum_v p (log p - log q), from log-probabilities (..., V)."""
    return max(0.0, float((lp.exp() * (lp - lq)).sum(-1).mean()))  # >= 0 but for rounding


@torch.no_grad()
def evaluate_policy(policy: nn.Module, ref: nn.Module, prompts: torch.Tensor, samples: int, new_tokens: int,
                    temperature: float, keywords: str, seed: int) -> dict[str, Any]:
    """Held-out reward and KL: `samples` continuations per prompt (fixed seed: paired across arms). Returns the
    means and the per-prompt mean reward (for win rates)."""
    rep = prompts.repeat_interleave(samples, 0)
    cont = sample(policy, rep, new_tokens, temperature, seed)
    rewards = score_batch(cont, keywords).reshape(len(prompts), samples)
    return {"reward": float(rewards.mean()), "kl": kl_per_token(policy, ref, rep, cont),
            "per_prompt": rewards.mean(1).tolist(), "n_prompts": len(prompts), "samples": samples}


def win_rate(a: list[float], b: list[float]) -> float:
    """Share of prompts where a's mean reward beats b's (ties count half)."""
    wins = [1.0 if x > y else 0.5 if x == y else 0.0 for x, y in zip(a, b, strict=True)]
    return float(np.mean(wins))


def _save_state(folder: Path, policy: nn.Module, opt: torch.optim.Optimizer, meta: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().contiguous().clone() for k, v in policy.state_dict().items()}
    for i, st in opt.state_dict()["state"].items():
        tensors.update({f"optim.{i}.{k}": torch.as_tensor(v).clone() for k, v in st.items()})
    tmp = folder / "state.safetensors.tmp"
    save_file(tensors, str(tmp))
    tmp.replace(folder / "state.safetensors")
    tmp = folder / "state.json.tmp"
    tmp.write_text(json.dumps(meta))
    tmp.replace(folder / "state.json")


def _load_state(folder: Path, policy: nn.Module, opt: torch.optim.Optimizer, key: str) -> dict[str, Any] | None:
    """The saved state when it belongs to this run (same config and reference), else None."""
    try:
        meta = json.loads((folder / "state.json").read_text())
        tensors = load_file(str(folder / "state.safetensors"))
    except (OSError, ValueError):
        return None
    if meta.get("key") != key:
        return None
    policy.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    sd = opt.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, i, name = k.split(".", 2)
            state.setdefault(int(i), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": sd["param_groups"]})
    return meta


def optimize(reference: nn.Module, cfg: RLConfig, train_data: np.ndarray, val_data: np.ndarray,
             state_dir: Path | None = None, progress: bool = False, desc: str = "policy",
             ref_id: str = "", on_checkpoint: Callable[[int], None] | None = None) -> tuple[nn.Module, list[dict]]:
    """The policy (initialized from `reference`, which stays frozen) after `cfg.updates` updates, and its reward-KL
    curve [{update, reward, kl}]. With `state_dir`, resumes from the last saved state of the same run."""
    ref = copy.deepcopy(reference).eval().requires_grad_(False)
    policy = copy.deepcopy(reference)
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.0)
    curve_p = heldout_prompts(val_data, cfg.curve_prompts, cfg.prompt_len)
    key = cfg.key() + ref_id
    start, curve = 0, []
    meta = _load_state(Path(state_dir) / STATE, policy, opt, key) if state_dir is not None else None
    if meta is not None:
        start, curve = meta["update"], meta["curve"]
    else:
        curve = [_curve_point(policy, ref, curve_p, cfg, 0)]
    bar = tqdm(range(start, cfg.updates), desc=desc, disable=not progress, unit="update", initial=start,
               total=cfg.updates)
    for update in bar:
        stats = _update(policy, ref, opt, cfg, train_data, update)
        bar.set_postfix(reward=f"{stats['reward']:.2f}", kl=f"{stats['kl']:.3f}")
        done = update + 1
        if done % cfg.ckpt_every == 0 or done == cfg.updates:
            curve.append(_curve_point(policy, ref, curve_p, cfg, done))
            if state_dir is not None:
                _save_state(Path(state_dir) / STATE, policy, opt,
                            {"key": key, "update": done, "curve": curve})
            if on_checkpoint is not None:
                on_checkpoint(done)
    return policy.eval(), curve


def _curve_point(policy: nn.Module, ref: nn.Module, prompts: torch.Tensor, cfg: RLConfig, update: int) -> dict:
    ev = evaluate_policy(policy, ref, prompts, 1, cfg.new_tokens, cfg.temperature, cfg.keywords, cfg.seed + 7)
    return {"update": update, "reward": ev["reward"], "kl": ev["kl"]}


def _update(policy: nn.Module, ref: nn.Module, opt: torch.optim.Optimizer, cfg: RLConfig, train_data: np.ndarray,
            update: int) -> dict[str, float]:
    step_seed = (cfg.seed * 1_000_003 + update) % 2**31
    prompts = train_prompts(train_data, cfg.batch, cfg.prompt_len, torch.Generator().manual_seed(step_seed))
    cont = sample(policy, prompts, cfg.new_tokens, cfg.temperature, step_seed)
    policy.train()
    lp = token_logprobs(policy, prompts, cont)
    with torch.no_grad():
        log_ratio = lp.detach() - token_logprobs(ref, prompts, cont)
    rewards = torch.from_numpy(score_batch(cont, cfg.keywords)).float()
    shaped = -cfg.beta * log_ratio
    shaped[:, -1] += rewards
    returns = shaped.flip(1).cumsum(1).flip(1)
    adv = returns - returns.mean(0, keepdim=True)
    adv = adv / (adv.std() + 1e-8)
    loss = -(adv * lp).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
    opt.step()
    return {"reward": float(rewards.mean()), "kl": float(log_ratio.mean()), "loss": float(loss.detach())}


def matched_kl_reward(curve: list[dict[str, float]], kl: float) -> float:
    """Reward at KL `kl` by linear interpolation on a reward-KL curve (points sorted by KL; clamped at the ends)."""
    pts = sorted((p["kl"], p["reward"]) for p in curve)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return float(np.interp(kl, xs, ys)) if not math.isnan(kl) else math.nan
