"""Subspace layers (Wortsman et al. 2102.10472; Nunez et al. 2110.04252): conv, linear and affine-norm layers
whose parameters lie on a line, a quadratic Bezier curve or a simplex of weight sets.

Point 0 keeps the plain attribute names (`weight`, `bias`), so a converted model's state dict is the plain one
plus `weight_1`, `bias_1`, ... for the other points. Order: line [w0, w1]; Bezier [w0, w1, control];
simplex [w0 .. w_{n-1}]. `alpha` is a float for line/Bezier and a length-n weight vector for a simplex.

LCS unstructured sparsity: a conv/linear layer with `keep < 1` multiplies w(alpha) by a per-layer magnitude
top-k mask computed without gradient, so pruned weights get zero gradient; `sparsify=False` exempts a layer.
LCS structured width: a conv with `width < 1` uses its first ceil(width * C_out) filters (`slim=False` exempts a
layer, e.g. the classifier); conv/linear/instance-norm layers use as many input channels as they receive.
LCS quantized: `bits > 0` fake-quantizes w(alpha) per layer (symmetric RTN, one scale max|w| / (2^{b-1} - 1) per
layer, signed [-2^{b-1}, 2^{b-1}-1], straight-through; exact grid values when baking).
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from models.layers.quant import fake_quant

KINDS = ("point", "line", "bezier", "simplex")  # point: one weight set (masking only, LCS+P)
PARAM_NAMES = ("weight", "bias")


def coefficients(kind: str, alpha: Any, n_points: int) -> list[Any]:
    """Mixing coefficients of the points at `alpha`."""
    if kind == "point":
        return [1.0]
    if kind == "line":
        return [1.0 - alpha, alpha]
    if kind == "bezier":
        return [(1.0 - alpha) ** 2, alpha ** 2, 2.0 * alpha * (1.0 - alpha)]
    if kind == "simplex":
        z = list(alpha) if isinstance(alpha, (list, tuple)) else list(torch.as_tensor(alpha).flatten())
        if len(z) != n_points:
            raise ValueError(f"simplex alpha needs {n_points} weights, got {len(z)}")
        return z
    raise ValueError(f"unknown subspace kind {kind!r}; use one of {KINDS}")


def n_points_for(kind: str, n_points: int | None = None) -> int:
    return {"point": 1, "line": 2, "bezier": 3}.get(kind, n_points or 3)


def slim_channels(c: int, width: float) -> int:
    """The first ceil(width * c) filters (at least one)."""
    return max(1, min(c, math.ceil(width * c - 1e-9)))


def topk_mask(w: torch.Tensor, keep: float) -> torch.Tensor:
    """Per-layer magnitude mask keeping round(keep * numel) weights (at least one); no gradient."""
    with torch.no_grad():
        k = max(1, int(round(keep * w.numel())))
        if k >= w.numel():
            return torch.ones_like(w)
        flat = w.abs().flatten()
        mask = torch.zeros_like(flat)
        mask[flat.topk(k, sorted=False).indices] = 1.0
        return mask.view_as(w)


class SubspaceMixin:
    """Shared state: kind, number of points, current alpha, kept fraction (conv/linear only)."""

    subspace_kind: str
    n_points: int
    alpha: Any
    keep: float = 1.0
    sparsify: bool = True
    width: float = 1.0   # LCS width: fraction of output filters used
    slim: bool = True    # False: width never applies (the classifier)
    bits: int = 0        # LCS quantized: weight bit width (0: float)

    def _init_points(self, kind: str, n_points: int | None) -> None:
        self.subspace_kind = kind
        self.n_points = n_points_for(kind, n_points)
        self.alpha = [1.0 / self.n_points] * self.n_points if kind == "simplex" else 1.0
        for name in PARAM_NAMES:
            base = getattr(self, name, None)
            if not isinstance(base, nn.Parameter):
                continue
            for k in range(1, self.n_points):
                self.register_parameter(f"{name}_{k}", nn.Parameter(self._fresh(name, base)))

    def _fresh(self, name: str, base: torch.Tensor) -> torch.Tensor:
        """An independently initialised point (norm affine points start equal: ones / zeros)."""
        return base.detach().clone()

    def points(self, name: str) -> list[torch.Tensor]:
        base = getattr(self, name)
        return [] if base is None else [base] + [getattr(self, f"{name}_{k}") for k in range(1, self.n_points)]

    def at(self, name: str) -> torch.Tensor | None:
        pts = self.points(name)
        if not pts:
            return None
        coeffs = coefficients(self.subspace_kind, self.alpha, self.n_points)
        return sum(c * p for c, p in zip(coeffs, pts))

    def sparse_weight(self) -> torch.Tensor:
        """w(alpha), top-k masked when keep < 1 and fake-quantized when bits > 0."""
        w = self.at("weight")
        w = w * topk_mask(w, self.keep) if self.sparsify and self.keep < 1.0 else w
        return fake_quant(w, self.bits, layout="flat") if self.bits else w  # one scale per layer

    def extra_repr(self) -> str:  # type: ignore[override]
        return f"{super().extra_repr()}, subspace={self.subspace_kind}x{self.n_points}"


class _WeightedInit(SubspaceMixin):
    def _fresh(self, name: str, base: torch.Tensor) -> torch.Tensor:
        t = torch.empty_like(base)
        if name == "weight":
            nn.init.kaiming_uniform_(t, a=math.sqrt(5))  # torch's own conv/linear init, drawn independently
        else:
            fan_in = self.weight[0].numel()
            bound = 1 / math.sqrt(fan_in) if fan_in else 0.0
            nn.init.uniform_(t, -bound, bound)
        return t


class SubspaceConv2d(_WeightedInit, nn.Conv2d):
    def __init__(self, *args: Any, kind: str = "line", n_points: int | None = None, **kwargs: Any) -> None:
        nn.Conv2d.__init__(self, *args, **kwargs)
        self._init_points(kind, n_points)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.sparse_weight(), self.at("bias")
        if self.slim and self.width < 1.0:
            n = slim_channels(self.out_channels, self.width)
            w, b = w[:n], None if b is None else b[:n]
        if x.shape[1] != w.shape[1] * self.groups:
            w = w[:, : x.shape[1] // self.groups]
        return self._conv_forward(x, w, b)


class SubspaceLinear(_WeightedInit, nn.Linear):
    def __init__(self, *args: Any, kind: str = "line", n_points: int | None = None, **kwargs: Any) -> None:
        nn.Linear.__init__(self, *args, **kwargs)
        self._init_points(kind, n_points)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.sparse_weight()
        return F.linear(x, w if x.shape[-1] == w.shape[1] else w[:, : x.shape[-1]], self.at("bias"))


class SubspaceGroupNorm(SubspaceMixin, nn.GroupNorm):
    def __init__(self, *args: Any, kind: str = "line", n_points: int | None = None, **kwargs: Any) -> None:
        nn.GroupNorm.__init__(self, *args, **kwargs)
        self._init_points(kind, n_points)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x, self.num_groups, self.at("weight"), self.at("bias"), self.eps)


class SubspaceBatchNorm2d(SubspaceMixin, nn.BatchNorm2d):
    """Affine parameters on the subspace; running statistics are shared (recalibrate them at an alpha)."""

    def __init__(self, *args: Any, kind: str = "line", n_points: int | None = None, **kwargs: Any) -> None:
        nn.BatchNorm2d.__init__(self, *args, **kwargs)
        self._init_points(kind, n_points)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average (used by recalibration)
                momentum = 1.0 / float(self.num_batches_tracked)
        use_batch = self.training or self.running_mean is None
        return F.batch_norm(x, self.running_mean if not self.training or self.track_running_stats else None,
                            self.running_var if not self.training or self.track_running_stats else None,
                            self.at("weight"), self.at("bias"), use_batch, momentum, self.eps)


class SubspaceInstanceNorm2d(SubspaceMixin, nn.InstanceNorm2d):
    def __init__(self, *args: Any, kind: str = "line", n_points: int | None = None, **kwargs: Any) -> None:
        nn.InstanceNorm2d.__init__(self, *args, **kwargs)
        self._init_points(kind, n_points)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]  # LCS width: the first c channels
        rm, rv = (None, None) if self.running_mean is None else (self.running_mean[:c], self.running_var[:c])
        return F.instance_norm(x, rm, rv, self.at("weight")[:c], self.at("bias")[:c],
                               self.training or not self.track_running_stats, self.momentum or 0.0, self.eps)


# --- conversion ---------------------------------------------------------------------------------------------------

def _twin(m: nn.Module, kind: str, n_points: int | None) -> nn.Module | None:
    """The subspace counterpart of a plain layer (same hyper-parameters), or None if it has no parameters."""
    kw = dict(kind=kind, n_points=n_points)
    if isinstance(m, nn.Conv2d):
        return SubspaceConv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
                              m.groups, m.bias is not None, m.padding_mode, **kw)
    if isinstance(m, nn.Linear):
        return SubspaceLinear(m.in_features, m.out_features, m.bias is not None, **kw)
    if isinstance(m, nn.GroupNorm) and m.affine:
        return SubspaceGroupNorm(m.num_groups, m.num_channels, m.eps, True, **kw)
    if isinstance(m, nn.BatchNorm2d) and m.affine:
        return SubspaceBatchNorm2d(m.num_features, m.eps, m.momentum, True, m.track_running_stats, **kw)
    if isinstance(m, nn.InstanceNorm2d) and m.affine:
        return SubspaceInstanceNorm2d(m.num_features, m.eps, m.momentum, True, m.track_running_stats, **kw)
    return None


def _replace(model: nn.Module, make) -> nn.Module:
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            new = make(child)
            if new is not None:
                setattr(parent, name, new)
    return model


def to_subspace(model: nn.Module, kind: str = "line", n_points: int | None = None,
                only: tuple[type, ...] | None = None) -> nn.Module:
    """Swap every conv/linear/affine norm (or only layers of the `only` types) for its subspace twin in place,
    keeping attribute names; the plain weights become point 0 (the other points are initialised independently)."""
    if kind not in KINDS:
        raise ValueError(f"unknown subspace kind {kind!r}; use one of {KINDS}")

    def make(child: nn.Module) -> nn.Module | None:
        if isinstance(child, SubspaceMixin) or (only is not None and not isinstance(child, only)):
            return None
        twin = _twin(child, kind, n_points)
        if twin is not None:
            twin.load_state_dict(child.state_dict(), strict=False)
            twin.sparsify = getattr(child, "sparsify", True)
            twin.slim = getattr(child, "slim", True)
        return twin

    return _replace(model, make)


def _plain(m: SubspaceMixin) -> nn.Module:
    cls = next(c for c in type(m).__mro__ if c.__module__.startswith("torch.nn"))
    plain = cls.__new__(cls)
    nn.Module.__init__(plain)
    plain.__dict__.update({k: v for k, v in m.__dict__.items() if k not in ("_parameters", "_buffers", "_modules")})
    plain._buffers = dict(m._buffers)
    plain._parameters = {}
    for name in PARAM_NAMES:
        if name in m._parameters:
            value = m.sparse_weight() if name == "weight" and isinstance(m, (nn.Conv2d, nn.Linear)) else m.at(name)
            plain._parameters[name] = None if value is None else nn.Parameter(value.detach().clone())
    for key in ("subspace_kind", "n_points", "alpha", "keep", "width", "slim", "bits"):
        plain.__dict__.pop(key, None)
    return plain


@torch.no_grad()
def bake_(model: nn.Module) -> nn.Module:
    """Replace each subspace layer by a plain torch layer holding its current (masked) point, in place."""
    return _replace(model, lambda c: _plain(c) if isinstance(c, SubspaceMixin) else None)


def subspace_layers(model: nn.Module) -> Iterator[SubspaceMixin]:
    return (m for m in model.modules() if isinstance(m, SubspaceMixin))


def is_subspace(model: nn.Module) -> bool:
    return any(True for _ in subspace_layers(model))


class set_alpha:
    """Set alpha on every subspace layer now; as a context manager, restore the previous values on exit."""

    def __init__(self, model: nn.Module, alpha: Any, keep: float | None = None, width: float | None = None,
                 bits: int | None = None) -> None:
        self.saved = [(m, m.alpha, m.keep, m.width, m.bits) for m in subspace_layers(model)]
        for m in subspace_layers(model):
            m.alpha = alpha
            if keep is not None:
                m.keep = keep
            if width is not None:
                m.width = width
            if bits is not None:
                m.bits = bits

    def __enter__(self) -> "set_alpha":
        return self

    def __exit__(self, *exc: Any) -> None:
        for m, alpha, keep, width, bits in self.saved:
            m.alpha, m.keep, m.width, m.bits = alpha, keep, width, bits


def cos2(model: nn.Module, i: int = 0, j: int = 1, types: Sequence[type] = (nn.Conv2d, nn.Linear)) -> torch.Tensor:
    """cos^2 between points i and j of all subspace conv/linear weights taken as one vector (dot products and
    norms summed over layers globally, not averaged per layer)."""
    dot = ni = nj = torch.zeros(())
    for m in subspace_layers(model):
        if isinstance(m, tuple(types)):
            wi, wj = m.points("weight")[i], m.points("weight")[j]
            dot, ni, nj = dot + (wi * wj).sum(), ni + wi.pow(2).sum(), nj + wj.pow(2).sum()
    return dot.pow(2) / (ni * nj).clamp_min(1e-12)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, x: torch.Tensor, batch: int = 128) -> None:
    """Reset BatchNorm running statistics and re-estimate them (cumulative average, one pass over x) at the
    model's current alpha; leaves the model in eval mode."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for k in range(0, len(x), batch):
        model(x[k:k + batch])
    for m, mom in zip(bns, saved):
        m.momentum = mom
    model.eval()
