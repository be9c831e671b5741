"""Dense OpenELM byte LM -> DynaMoE (card 04 section 2), in resumable phases under OUT/work/:

1. dense      train the dense model from the recipe's `dense` (or take `dense_checkpoint`)
2. reordered  score each FFN hidden unit by mean |silu(g_j(x)) u_j(x)| on `calib_bytes` training bytes and permute
              gate/up rows and down columns so important units come first (the dense function is unchanged)
3. finetuned  `finetune_steps` AdamW steps, loss summed over every nested expert size
4. routers    token-difficulty labels on `label_bytes` training bytes, per layer the smallest expert that is good
              enough for the token: its next-byte loss with that layer alone at that expert at most tau nats above
              the full model's (`loss_increase`, the default), or its FFN output within relative L2 error tau of
              the full FFN's (`relative_error`); then one linear router per layer (cross-entropy, backbone frozen)

Fine-tuning and router training write a checkpoint (weights + AdamW state, safetensors) every `save_every` steps;
a run started again after an interruption resumes from the last one. Batches are drawn from a generator seeded by
(seed, phase, step), so a resumed run and an uninterrupted one see the same data in the same order. The finished
DynaMoE checkpoint (model.safetensors + card.json) is written to OUT last; OUT/work keeps the dense model.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from models import checkpoint
from models.dynamoe import DynaMoE, ModelArgs, active_fraction, expert_sizes
from models.errors import CheckpointError, RecipeError
from trainers.dynamoe.recipe import DynaMoERecipe, dense_recipe
from trainers.loop import seed_everything
from trainers.text import TextCorpus, bits_per_byte, eval_windows, load_text, random_windows

PHASE_SEED = {"calib": 1, "finetune": 2, "labels": 3, "router": 4}
FFN_KEY = "transformer.layers.{}.ffn.proj_{}.weight"


def _seed(r: DynaMoERecipe, phase: str, step: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(r.seed * 1_000_003 + PHASE_SEED[phase] * 100_003 + step)


# ------------------------------------------------------------------------------------------------ dense source

def check_dense(path: Path, fractions: tuple[float, ...]) -> dict[str, Any]:
    """The card of a dense OpenELM checkpoint whose every layer has a SwiGLU FFN that the expert sizes divide;
    anything else is a one-line CheckpointError (read from the card and the safetensors header, nothing loaded)."""
    from safetensors import safe_open

    card = checkpoint.read_card(path)
    fix = "pass a dense OpenELM byte-LM checkpoint (edgezoo lm train), or leave dense_checkpoint unset"
    if card["model"] == "dynamoe":
        raise CheckpointError(f"{path} is already a DynaMoE checkpoint", fix)
    if card["model"] != "openelm" or card.get("task") != "lm":
        raise CheckpointError(f"{path} is a {card['model']!r} checkpoint, not a dense OpenELM byte LM", fix)
    try:
        with safe_open(str(Path(path) / checkpoint.WEIGHTS), "pt") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for a bad header
        raise CheckpointError(f"weights of {path} cannot be read ({e.__class__.__name__})", fix) from None
    for i in range(int(card["args"].get("num_transformer_layers", 0))):
        up, down = shapes.get(FFN_KEY.format(i, 1)), shapes.get(FFN_KEY.format(i, 2))
        if up is None or down is None or len(up) != 2 or len(down) != 2 or up[0] != 2 * down[1]:
            raise CheckpointError(f"{path}: layer {i} has no SwiGLU FFN (proj_1 [gate|up], proj_2) to split", fix)
        try:
            expert_sizes(down[1], fractions)
        except ValueError as e:
            raise CheckpointError(f"{path}: layer {i}: {e}", "choose expert_fractions that divide the FFN width")
    return card


def dense_source(r: DynaMoERecipe, work: Path) -> Path:
    """The dense checkpoint to convert: `dense_checkpoint`, or the model trained from `dense` (reused when done)."""
    from trainers.openelm.train import fit_lm

    if r.dense_checkpoint is not None:
        return Path(r.dense_checkpoint).resolve()
    out = work / "dense"
    try:
        if "metrics" in checkpoint.read_card(out):
            return out / "last"
    except CheckpointError:
        pass
    fit_lm(dense_recipe(r), out, progress=True)
    return out / "last"


def from_dense(dense: Path, r: DynaMoERecipe) -> DynaMoE:
    """A DynaMoE holding the dense weights (routers freshly initialised from the recipe's seed)."""
    model, card = checkpoint.load(dense)
    seed_everything(r.seed)
    moe = DynaMoE(ModelArgs(**{**card["args"], "expert_fractions": tuple(r.expert_fractions), "theta": r.theta}))
    missing, unexpected = moe.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected and all(".router." in k for k in missing), (missing, unexpected)
    return moe


# ------------------------------------------------------------------------------------------------ reordering

def _windows(data: np.ndarray, n_bytes: int, context: int, gen: torch.Generator) -> torch.Tensor:
    """Non-overlapping windows over `n_bytes` contiguous training bytes from a seeded offset."""
    n_bytes = min(n_bytes, len(data) - 1)
    start = int(torch.randint(0, len(data) - n_bytes, (1,), generator=gen))
    return eval_windows(data[start:start + n_bytes + 1], context)


@torch.no_grad()
def ffn_inputs(model: DynaMoE, windows: torch.Tensor, batch: int = 32, desc: str = "") -> list[torch.Tensor]:
    """Every layer's FFN input (N tokens, d) with the full-size FFNs, over `windows[:, :-1]`."""
    model.eval().set_mode("fixed")
    store: list[list[torch.Tensor]] = [[] for _ in model.ffns()]
    hooks = [f.register_forward_pre_hook(lambda m, a, i=i: store[i].append(a[0].reshape(-1, a[0].shape[-1])))
             for i, f in enumerate(model.ffns())]
    try:
        for s in tqdm(range(0, len(windows), batch), desc=desc, disable=not desc, unit="batch", file=sys.stderr):
            model(windows[s:s + batch, :-1])
    finally:
        for h in hooks:
            h.remove()
    return [torch.cat(x) for x in store]


@torch.no_grad()
def reorder_(model: DynaMoE, windows: torch.Tensor, progress: bool = True) -> list[list[float]]:
    """Permute every FFN's hidden units by decreasing importance; returns the sorted scores per layer."""
    xs = ffn_inputs(model, windows, desc="reorder neurons" if progress else "")
    sorted_scores = []
    for ffn, x in zip(model.ffns(), xs):
        a, b = ffn.proj_1(x).chunk(2, -1)
        score = (F.silu(a) * b).abs().mean(0)  # (hidden,)
        perm = torch.argsort(score, descending=True)
        w1, h = ffn.proj_1.weight, ffn.hidden
        ffn.proj_1.weight.copy_(torch.cat([w1[:h][perm], w1[h:][perm]]))
        ffn.proj_2.weight.copy_(ffn.proj_2.weight[:, perm])
        sorted_scores.append(score[perm].tolist())
    return sorted_scores


# ------------------------------------------------------------------------------------------------ resumable state

def save_state(folder: Path, model: nn.Module, opt: torch.optim.Optimizer, step: int) -> None:
    """Weights + AdamW state (safetensors) and the step, written so a kill leaves the previous state intact."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    sd = opt.state_dict()
    tensors = {f"model.{k}": v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    for idx, st in sd["state"].items():
        tensors.update({f"opt.{idx}.{k}": torch.as_tensor(v).clone() for k, v in st.items()})
    save_file(tensors, str(folder / "state.safetensors.tmp"))
    (folder / "state.json.tmp").write_text(json.dumps({"step": step, "param_groups": sd["param_groups"]}))
    (folder / "state.safetensors.tmp").replace(folder / "state.safetensors")
    (folder / "state.json.tmp").replace(folder / "state.json")


def load_state(folder: Path, model: nn.Module, opt: torch.optim.Optimizer) -> int:
    """Restore what save_state wrote; returns the step to continue from (0 when there is no state)."""
    from safetensors.torch import load_file

    try:
        meta = json.loads((folder / "state.json").read_text())
        tensors = load_file(str(folder / "state.safetensors"))
    except (OSError, ValueError):
        return 0
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, idx, name = k.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return int(meta["step"])


def _lr(step: int, r: DynaMoERecipe, steps: int, lr: float) -> float:
    """trainers.openelm's warm-up + cosine schedule (to 10 % of `lr`) over `steps`."""
    from types import SimpleNamespace

    from trainers.openelm.train import lr_at

    return lr_at(step, SimpleNamespace(warmup=r.warmup, steps=steps, lr=lr, min_lr_ratio=0.1))


# ------------------------------------------------------------------------------------------------ fine-tuning

def nested_loss(model: DynaMoE, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy summed over every expert size (all layers at that size)."""
    total = x.new_zeros((), dtype=torch.float32)
    for e in range(len(model.ffns()[0].sizes)):
        model.set_mode("fixed", e)
        logits = model(x)
        total = total + F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))
    return total


def finetune(model: DynaMoE, r: DynaMoERecipe, corpus: TextCorpus, folder: Path, progress: bool = True) -> None:
    opt = torch.optim.AdamW(model.parameters(), lr=r.finetune_lr, weight_decay=0.0)
    start = load_state(folder, model, opt)
    bar = tqdm(range(start, r.finetune_steps), desc="fine-tune nested", disable=not progress, unit="step",
               initial=start, total=r.finetune_steps, file=sys.stderr)
    model.train()
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = _lr(step, r, r.finetune_steps, r.finetune_lr)
        x, y = random_windows(corpus.train, r.batch_size, r.context, _seed(r, "finetune", step))
        loss = nested_loss(model, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        bar.set_postfix(loss=f"{loss.item() / len(model.ffns()[0].sizes):.3f}")
        if (step + 1) % r.save_every == 0 and step + 1 < r.finetune_steps:
            save_state(folder, model, opt, step + 1)
    model.eval()


# ------------------------------------------------------------------------------------------------ labels + routers

@torch.no_grad()
def difficulty(ffn, x: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(labels (N,), relative errors (N, E)): per token the smallest expert whose output is within tau of the
    full FFN's (relative L2 error); the full expert always qualifies."""
    outs = [ffn.sliced(x, k) for k in ffn.sizes]
    full = outs[-1]
    rel = torch.stack([(o - full).norm(dim=-1) / full.norm(dim=-1).clamp_min(1e-8) for o in outs], -1)
    return (rel > tau).int().cumprod(-1).sum(-1).clamp(max=len(ffn.sizes) - 1), rel


@torch.no_grad()
def token_losses(model: DynaMoE, windows: torch.Tensor, layer: int | None = None, expert: int = 0,
                 batch: int = 32) -> torch.Tensor:
    """Per-token cross-entropy (N * T,) with every FFN full size except `layer`, which runs expert `expert`."""
    model.eval().set_mode("fixed")
    if layer is not None:
        model.ffns()[layer].fixed = expert
    out = []
    for s in range(0, len(windows), batch):
        w = windows[s:s + batch]
        logits = model(w[:, :-1])
        out.append(F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), w[:, 1:].reshape(-1),
                                   reduction="none"))
    model.set_mode("route")
    return torch.cat(out)


def loss_difficulty(model: DynaMoE, windows: torch.Tensor, layer: int, tau: float, base: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(labels, loss increases (N, E)) of one layer: per token the smallest expert whose next-byte loss, with that
    layer alone at that expert, is at most tau nats above the full model's."""
    n_experts = len(model.ffns()[layer].sizes)
    delta = torch.stack([token_losses(model, windows, layer, e) - base for e in range(n_experts - 1)]
                        + [torch.zeros_like(base)], -1)  # the full expert adds nothing
    return (delta > tau).int().cumprod(-1).sum(-1).clamp(max=n_experts - 1), delta


def label_tokens(model: DynaMoE, windows: torch.Tensor, tau: float, rule: str = "relative_error", desc: str = ""
                 ) -> list[dict[str, torch.Tensor]]:
    """Per layer: the FFN inputs `x`, difficulty `labels` and per-expert `rel` (relative FFN error, or loss
    increase for rule "loss_increase") of every token in `windows`."""
    xs = ffn_inputs(model, windows, desc=desc)
    base = token_losses(model, windows) if rule == "loss_increase" else None
    out = []
    for i, (ffn, x) in enumerate(zip(model.ffns(), xs)):
        labels, rel = difficulty(ffn, x, tau) if base is None else loss_difficulty(model, windows, i, tau, base)
        out.append({"x": x, "labels": labels, "rel": rel})
    return out


def train_routers(model: DynaMoE, data: list[dict[str, torch.Tensor]], r: DynaMoERecipe, folder: Path,
                  progress: bool = True) -> None:
    """One linear router per layer on (FFN input -> label), cross-entropy, backbone frozen; resumable."""
    for p in model.parameters():
        p.requires_grad_(False)
    routers = nn.ModuleList(f.router for f in model.ffns())
    for p in routers.parameters():
        p.requires_grad_(True)
    opt = torch.optim.AdamW(routers.parameters(), lr=r.router_lr, weight_decay=0.0)
    start = load_state(folder, routers, opt)
    bar = tqdm(range(start, r.router_steps), desc="train routers", disable=not progress, unit="step",
               initial=start, total=r.router_steps, file=sys.stderr)
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = _lr(step, r, r.router_steps, r.router_lr)
        gen = _seed(r, "router", step)
        loss = torch.zeros(())
        for router, d in zip(routers, data):
            idx = torch.randint(0, len(d["labels"]), (r.router_batch,), generator=gen)
            loss = loss + F.cross_entropy(router(d["x"][idx]), d["labels"][idx].long())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        bar.set_postfix(loss=f"{loss.item() / len(data):.3f}")
        if (step + 1) % r.save_every == 0 and step + 1 < r.router_steps:
            save_state(folder, routers, opt, step + 1)
    for p in model.parameters():
        p.requires_grad_(True)


# ------------------------------------------------------------------------------------------------ evaluation

@torch.no_grad()
def routed_eval(model: DynaMoE, windows: torch.Tensor, assigned: list[torch.Tensor] | None = None,
                theta: float | None = None, fixed: int | None = None, batch: int = 32
                ) -> tuple[float, list[torch.Tensor]]:
    """(bpb, per-layer experts (N, T)) over `windows`: routed at `theta` (default: the model's), with the experts
    of every token given by `assigned` (per layer (N, T)), or with every layer at expert `fixed`."""
    model.eval()
    if theta is not None:
        model.set_theta(theta)
    total, n = 0.0, 0
    choices: list[list[torch.Tensor]] = [[] for _ in model.ffns()]
    for s in range(0, len(windows), batch):
        w = windows[s:s + batch]
        mode = "fixed" if fixed is not None else "route" if assigned is None else "assign"
        model.set_mode(mode, fixed, None if assigned is None else [a[s:s + batch] for a in assigned])
        logits = model(w[:, :-1])
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), w[:, 1:].reshape(-1),
                                 reduction="sum").item()
        n += w[:, 1:].numel()
        for c, f in zip(choices, model.ffns()):
            c.append(torch.full(w[:, 1:].shape, fixed) if fixed is not None else f.last_choice)
    model.set_mode("route")
    return bits_per_byte(total / n), [torch.cat(c) for c in choices]


# ------------------------------------------------------------------------------------------------ the run

def _phase_done(folder: Path) -> DynaMoE | None:
    try:
        return checkpoint.load(folder)[0] if (folder / checkpoint.CARD).exists() else None
    except CheckpointError:
        return None


def convert(r: DynaMoERecipe, out: Path, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) every phase; write the DynaMoE checkpoint to `out`; return its metrics."""
    torch.set_num_threads(r.threads)
    t0, out = time.perf_counter(), Path(out)
    if r.dense_checkpoint is not None:
        check_dense(Path(r.dense_checkpoint), tuple(r.expert_fractions))  # before anything is written
    work, corpus = out / "work", load_text()
    dense = dense_source(r, work)
    model = _phase_done(work / "finetuned")
    if model is None:
        model = _phase_done(work / "reordered")
        if model is None:
            model = from_dense(dense, r)
            calib = _windows(corpus.train, r.calib_bytes, r.context, _seed(r, "calib"))
            scores = reorder_(model, calib, progress)
            checkpoint.save(model, work / "reordered", {"phase": "reordered", "top_unit_scores": [s[:8] for s in scores]})
        finetune(model, r, corpus, work / "finetune_state", progress)
        checkpoint.save(model, work / "finetuned", {"phase": "finetuned"})
        shutil.rmtree(work / "finetune_state", ignore_errors=True)
    labels = label_tokens(model, _windows(corpus.train, r.label_bytes, r.context, _seed(r, "labels")), r.tau,
                          r.label_rule, desc="label token difficulty" if progress else "")
    train_routers(model, labels, r, work / "router_state", progress)
    metrics = final_metrics(model, r, corpus, labels, time.perf_counter() - t0)
    card = {"recipe": {**r.__dict__}, "recipe_hash": r.hash(), "dense_checkpoint": str(dense),
            "dataset": corpus.info(), "data_split_hash": corpus.sha256, "metrics": metrics}
    checkpoint.save(model, out, card)
    shutil.rmtree(work / "router_state", ignore_errors=True)
    return metrics


@torch.no_grad()
def final_metrics(model: DynaMoE, r: DynaMoERecipe, corpus: TextCorpus, labels: list[dict[str, torch.Tensor]],
                  seconds: float) -> dict[str, Any]:
    val = eval_windows(corpus.val, r.context, r.eval_windows)
    bpb, choices = routed_eval(model, val, theta=r.theta)
    pairs = list(zip(labels, model.ffns()))
    hist = [torch.bincount(d["labels"].long(), minlength=len(f.sizes)).tolist() for d, f in pairs]
    acc = [float((f.router(d["x"]).argmax(-1) == d["labels"]).float().mean()) for d, f in pairs]
    return {"val_bpb": bpb, "theta": r.theta, "active_ffn_fraction": active_fraction(model, choices),
            "full_size_val_bpb": routed_eval(model, val, fixed=len(model.ffns()[0].sizes) - 1)[0],
            "label_histogram": hist, "router_train_accuracy": acc, "train_seconds": seconds,
            "params": sum(p.numel() for p in model.parameters())}


def main() -> None:  # python -m trainers.dynamoe.convert RECIPE OUT [key=value ...]
    from models.errors import EdgeZooError
    from trainers.dynamoe.recipe import recipe_from_dict
    from trainers.recipe import read_recipe_yaml

    try:
        data, path = read_recipe_yaml(sys.argv[1], sys.argv[3:])
        print(json.dumps(convert(recipe_from_dict(data, str(path)), Path(sys.argv[2])), default=str))
    except (EdgeZooError, RecipeError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
