"""DynaMoE (Nishu et al., 2025): a dense byte LM turned into nested FFN experts with a per-layer router.

The backbone is models/openelm.py's OpenELM unchanged (attention, norms, embeddings, decoder layers); only each
layer's SwiGLU FFN becomes a `NestedFeedForward`: the same `proj_1` ([gate | up]) and `proj_2` weights, whose hidden
units are ordered by importance, so expert e is the prefix of `sizes[e]` units (larger experts contain smaller
ones), plus `router`, a linear map from the FFN input to one logit per expert.

Routing (card 04 section 2, step 6): with the router's probabilities ordered small -> large, a token takes the
smallest expert whose cumulative probability reaches theta (0 <= theta <= 1; higher theta, larger experts).

In torch the routed FFN computes every unit and masks the ones above the token's expert (masked dense compute:
exportable to ONNX and Core ML, no compute saved); `fixed` mode slices the weights (fine-tuning, fixed-size
references), and `assign` mode takes the expert of every token from outside (oracle and random-routing arms).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from models import openelm
from models.openelm import FeedForward, OpenELM
from models.registry import PaperCard, register

CARD = PaperCard(title="From Dense to Dynamic: Token-Difficulty Driven MoEfication of Pre-Trained LLMs",
                 arxiv="2502.12325", code="https://arxiv.org/abs/2502.12325 (no public code)", key="dynamoe")
MODES = ("route", "fixed", "assign")


@dataclass
class ModelArgs(openelm.ModelArgs):
    """OpenELM's fields plus the nested experts: `expert_fractions` of each layer's FFN width (increasing, the last
    1.0) and the sensitivity `theta` the routed forward uses."""
    expert_fractions: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
    theta: float = 0.5

    @classmethod
    def tiny(cls) -> "ModelArgs":
        return cls(model_dim=32, num_transformer_layers=2, head_dim=8, qkv_multipliers=(1.0, 1.0),
                   ffn_multipliers=(4.0, 4.0), max_context_length=64)


def expert_sizes(hidden: int, fractions: tuple[float, ...]) -> list[int]:
    """Hidden units of each nested expert; ValueError when a fraction does not give a whole, increasing size."""
    sizes = [round(f * hidden) for f in fractions]
    if any(abs(s - f * hidden) > 1e-6 for s, f in zip(sizes, fractions)) or sizes[-1] != hidden \
            or any(b <= a for a, b in zip([0, *sizes], sizes)):
        raise ValueError(f"expert fractions {list(fractions)} do not give whole, increasing sizes of {hidden} "
                         "units ending at the full width")
    return sizes


def check_theta(theta: float) -> float:
    if isinstance(theta, bool) or not isinstance(theta, (int, float)) or not 0.0 <= theta <= 1.0:
        raise ValueError(f"theta {theta!r} is outside [0, 1]")
    return float(theta)


class NestedFeedForward(FeedForward):
    """OpenELM's SwiGLU FFN with nested prefix experts and a router (see the module docstring)."""

    def __init__(self, dim: int, hidden: int, sizes: list[int], theta: float) -> None:
        super().__init__(dim, hidden)
        self.hidden, self.sizes, self.theta = hidden, list(sizes), check_theta(theta)
        self.router = nn.Linear(dim, len(sizes))
        self.mode, self.fixed, self.assigned = "route", len(sizes) - 1, None
        self.last_choice: torch.Tensor | None = None  # (B, T) expert per token of the latest routed call

    def route(self, x: torch.Tensor, theta: float | None = None) -> torch.Tensor:
        """Expert index (B, T) per token: the smallest e with cumulative router probability >= theta."""
        cum = self.router(x).float().softmax(-1).cumsum(-1)  # (B, T, E)
        th = self.theta if theta is None else theta
        return (cum < th).sum(-1).clamp(max=len(self.sizes) - 1)

    def sliced(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Expert with k units, computed on the first k rows of gate / up and columns of down."""
        w1, h = self.proj_1.weight, self.hidden
        a = F.linear(x, w1[:k])
        b = F.linear(x, w1[h:h + k])
        return F.linear(F.silu(a) * b, self.proj_2.weight[:, :k])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "fixed":
            return self.sliced(x, self.sizes[self.fixed])
        choice = self.assigned if self.mode == "assign" else self.route(x)
        self.last_choice = choice
        a, b = self.proj_1(x).chunk(2, -1)
        return self.proj_2(F.silu(a) * b * self.keep(choice).to(x.dtype))

    def keep(self, choice: torch.Tensor) -> torch.Tensor:
        """(B, T, hidden) mask of the units in each token's expert. Built from Python constants, no buffer (a
        buffer would be taken for a state by the Core ML export)."""
        units = torch.arange(self.hidden, device=choice.device)
        tier = sum((units >= s).long() for s in self.sizes[:-1])  # (hidden,): the smallest expert holding unit j
        return tier <= choice[..., None]


@register("dynamoe", ModelArgs, CARD, task="lm")
class DynaMoE(OpenELM):
    """OpenELM whose FFNs are nested experts with routers (weights of a converted dense OpenELM load as they are,
    plus `transformer.layers.N.ffn.router.*`)."""

    def __init__(self, args: ModelArgs) -> None:
        super().__init__(args)
        for layer, hidden in zip(self.transformer.layers, args.ffn_dims()):
            sizes = expert_sizes(hidden, args.expert_fractions)
            ffn = NestedFeedForward(args.model_dim, hidden, sizes, args.theta)
            ffn.load_state_dict(layer.ffn.state_dict(), strict=False)  # the initialised dense weights
            layer.ffn = ffn

    def ffns(self) -> list[NestedFeedForward]:
        return [layer.ffn for layer in self.transformer.layers]

    def set_mode(self, mode: str, fixed: int | None = None, assigned: list[torch.Tensor] | None = None) -> None:
        """route | fixed (expert index `fixed` everywhere) | assign (`assigned[i]`: (B, T) experts of layer i)."""
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {MODES}")
        for i, ffn in enumerate(self.ffns()):
            ffn.mode = mode
            ffn.fixed = len(ffn.sizes) - 1 if fixed is None else fixed
            ffn.assigned = assigned[i] if assigned is not None else None

    def set_theta(self, theta: float) -> None:
        theta = check_theta(theta)
        self.args.theta = theta
        for ffn in self.ffns():
            ffn.theta = theta


def active_ffn_params(ffn: NestedFeedForward, expert: int) -> int:
    """FFN parameters one token uses in expert `expert`, the router's included (gate, up, down + router)."""
    d = ffn.proj_1.in_features
    return 3 * d * ffn.sizes[expert] + ffn.router.weight.numel() + ffn.router.bias.numel()


def active_fraction(model: DynaMoE, choices: list[torch.Tensor]) -> float:
    """Mean active FFN fraction over tokens, router cost included: sum of active FFN params / dense FFN params."""
    used = dense = 0.0
    for ffn, c in zip(model.ffns(), choices):
        per_expert = torch.tensor([active_ffn_params(ffn, e) for e in range(len(ffn.sizes))],
                                  dtype=torch.float64)
        used += float(per_expert[c.reshape(-1)].sum())
        dense += 3 * ffn.proj_1.in_features * ffn.hidden * c.numel()
    return used / dense


def active_params(model: DynaMoE, choices: list[torch.Tensor]) -> dict[str, Any]:
    """Parameters per token: total, the dense FFN's, and the mean active count (attention, norms, embedding and the
    routed FFNs with their routers)."""
    total = sum(p.numel() for p in model.parameters())
    ffn_all = sum(p.numel() for f in model.ffns() for p in f.parameters())
    dense_ffn = sum(3 * f.proj_1.in_features * f.hidden for f in model.ffns())
    frac = active_fraction(model, choices)
    return {"total_params": total, "dense_ffn_params": dense_ffn, "active_ffn_fraction": frac,
            "active_params_per_token": total - ffn_all + frac * dense_ffn}
