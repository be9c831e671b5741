"""Reward, KL and win rate of an exported LM artifact, measured through its runtime (profiles/lm_measure.py calls
`artifact_quality` when the checkpoint's card names it under `quality_eval`).

On `prompts` evenly spaced held-out prompts, `samples` continuations each are sampled from the artifact with the one
sampler and generate_step of models.generation (temperature `temperature`, a fixed seed): held-out mean reward;
per-token KL(artifact || reference) over the sampled positions, the reference being the arm's reference checkpoint
(a policy) or the artifact's own fp32 checkpoint (base, SFT, soup: then the KL is what export and compression
changed); win rate against the base checkpoint (`anchor`) sampled on the same prompts with the same seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from models import checkpoint
from models.errors import CheckpointError
from models.generation.generate import generate_step
from models.generation.sampling import make_sampler
from trainers.salsa.reward import heldout_prompts, score_batch
from trainers.salsa.rl import evaluate_policy, exact_kl, token_logprobs, win_rate
from trainers.text import load_text


def _model(ref: dict[str, str], role: str) -> torch.nn.Module:
    path = Path(ref["path"])
    if checkpoint.checkpoint_hash(path) != ref["checkpoint_sha256"]:
        raise CheckpointError(f"the {role} checkpoint {path} changed since this model was trained",
                              "retrain this model (edgezoo run retrains what changed)")
    return checkpoint.load_lm(path)[0]


def _sample(rt: Any, prompts: np.ndarray, new_tokens: int, temperature: float, seed: int) -> np.ndarray:
    draw = make_sampler(temperature, gen=torch.Generator().manual_seed(seed))
    sampler = lambda logits: draw(torch.from_numpy(np.asarray(logits, np.float32))).numpy()
    return np.stack(list(generate_step(rt.decode_step, prompts, new_tokens, sampler=sampler, prefill=rt.prefill)), 1)


def artifact_quality(rt: Any, settings: dict[str, Any], checkpoint_dir: str) -> dict[str, Any]:
    """{reward, kl_to_reference, win_rate_vs_base, ...} of the artifact loaded in `rt` (prefill / decode_step), made
    from `checkpoint_dir`."""
    s = settings
    prompts = heldout_prompts(load_text().val, s["prompts"], s["prompt_len"])
    rep = prompts.repeat_interleave(s["samples"], 0)
    cont = _sample(rt, rep.numpy(), s["new_tokens"], s["temperature"], s["seed"])
    rewards = score_batch(cont, s["keywords"]).reshape(s["prompts"], s["samples"])
    logits = rt.prefill(np.concatenate([rep.numpy(), cont], 1)[:, :-1])
    lp = F.log_softmax(torch.from_numpy(np.asarray(logits, np.float32))[:, rep.shape[1] - 1:], -1)
    ref = _model(s["reference"], "reference") if s.get("reference") else checkpoint.load_lm(Path(checkpoint_dir))[0]
    with torch.no_grad():
        lq = token_logprobs(ref, rep, torch.from_numpy(cont).long(), full=True)
    out: dict[str, Any] = {"reward": float(rewards.mean()), "reward_n": int(rewards.size),
                           "reward_keywords": s["keywords"], "kl_to_reference": exact_kl(lp, lq),
                           "kl_reference": "arm reference" if s.get("reference") else "own fp32 checkpoint"}
    if s.get("anchor"):
        anchor = _model(s["anchor"], "base")
        base = evaluate_policy(anchor, anchor, prompts, s["samples"], s["new_tokens"], s["temperature"],
                               s["keywords"], s["seed"])
        out["win_rate_vs_base"] = win_rate(rewards.mean(1).tolist(), base["per_prompt"])
    return out
