"""SFT from a shared base and the weight soup of two SFT runs (card 05, section 2).

SFT: AdamW at a lower LR than pre-training on random windows of the alphabetically first `topics` pydoc topic texts
(all inside the training split); `data_seed` alone sets the order of the windows, so two SFT runs from one base differ
only in data order. Soup: alpha * theta_1 + (1 - alpha) * theta_2 over every entry of the state dict (norms, tied
embeddings and buffers too), refused unless both parents have the same keys, shapes and dtypes.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from models.errors import RecipeError
from trainers.openelm.train import evaluate_lm, lm_loss
from trainers.text import SEPARATOR, random_windows


def sft_bytes(topics: int) -> np.ndarray:
    """The SFT data: the first `topics` pydoc topic texts in sorted-key order, joined like the corpus."""
    from pydoc_data.topics import topics as all_topics

    keys = sorted(all_topics)[:topics]
    return np.frombuffer(SEPARATOR.join(all_topics[k] for k in keys).encode("utf-8"), dtype=np.uint8).copy()


def sft(model: nn.Module, data: np.ndarray, steps: int, lr: float, batch: int, context: int, data_seed: int,
        progress: bool = False, desc: str = "sft") -> nn.Module:
    """Fine-tune a copy of `model`; the windows come from a generator seeded by `data_seed` only."""
    model = copy.deepcopy(model).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    gen = torch.Generator().manual_seed(data_seed)
    for _ in tqdm(range(steps), desc=desc, disable=not progress, unit="step"):
        x, y = random_windows(data, batch, context, gen)
        loss, _ = lm_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return model.eval()


def check_soup_parents(a: nn.Module, b: nn.Module, names: tuple[str, str] = ("parent 1", "parent 2")) -> None:
    """Both parents must be the same architecture: same state-dict keys, shapes and dtypes (and model args)."""
    fix = "soup two SFT checkpoints fine-tuned from the same base (same model args)"
    sa, sb = a.state_dict(), b.state_dict()
    if set(sa) != set(sb):
        diff = sorted(set(sa) ^ set(sb))[:3]
        raise RecipeError(f"soup parents {names[0]} and {names[1]} have different weights ({', '.join(diff)} ...)", fix)
    for k in sa:
        if sa[k].shape != sb[k].shape or sa[k].dtype != sb[k].dtype:
            raise RecipeError(f"soup parents {names[0]} and {names[1]} differ in {k}: {tuple(sa[k].shape)} "
                              f"{sa[k].dtype} vs {tuple(sb[k].shape)} {sb[k].dtype}", fix)
    if getattr(a, "args", None) != getattr(b, "args", None):
        raise RecipeError(f"soup parents {names[0]} and {names[1]} have different model args", fix)


def interpolate(a: nn.Module, b: nn.Module, alpha: float) -> nn.Module:
    """A new model with alpha * a + (1 - alpha) * b for every state-dict entry (integer buffers: taken from a)."""
    check_soup_parents(a, b)
    out = copy.deepcopy(a)
    sb = b.state_dict()
    mixed = {k: alpha * v + (1 - alpha) * sb[k] if v.is_floating_point() else v.clone()
             for k, v in a.state_dict().items()}
    out.load_state_dict(mixed)
    return out.eval()


def barrier_curve(a: nn.Module, b: nn.Module, val: np.ndarray, context: int, windows: int | None,
                  alphas: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)) -> list[dict[str, float]]:
    """Validation bpb along theta(alpha) = alpha * a + (1 - alpha) * b, and the barrier: bpb minus the linear
    interpolation of the endpoints' bpb (0 at the ends; > 0 is a barrier)."""
    bpb = {al: evaluate_lm(interpolate(a, b, al), val, context, windows)["bpb"] for al in alphas}
    ends = (bpb[alphas[0]], bpb[alphas[-1]])
    return [{"alpha": al, "val_bpb": v, "barrier": v - ((1 - al) * ends[0] + al * ends[1])} for al, v in bpb.items()]
