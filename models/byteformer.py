"""ByteFormer (Horton et al., arXiv 2306.00238): classification straight from file bytes.

bytes (B, L) -> Embedding(257, d) (row 256: padding, a zero vector) -> Conv1d(d, d, k, stride k/2, no bias)
-> + learned positions[:T] -> pre-norm transformer layers on shifted windows (shift 0 / window/2, alternating)
with token merging after flagged layers -> LayerNorm -> masked mean pool -> linear classifier.

Inputs are explicit: `tokens` (B, L) integer byte values and `mask` (B, L) float, 1 for real bytes and 0 for
padding (the exported graph takes int32 tokens and a float mask at a fixed length L = `max_bytes`). Without a mask,
negative tokens (-1, upstream's padding value) are padding.

Masks (card 06 section 2, "our version"): a reduced token is valid only when its whole convolution window is real
bytes; attention gets a key-padding mask and, in shifted layers, a boundary mask so that the tokens the cyclic
shift wraps around attend only among themselves (fully masked windows give zeros through the shared
MultiHeadAttention); padded positions are zeroed before every token merge; the pool averages valid tokens only.
So a sample's logits do not depend on how far it is padded, i.e. on its batch-mates.

`upstream_compat=True` reproduces corenet's behaviour for its released checkpoints: the padding mask stays all
valid (upstream fills a copy), attention runs unmasked across the shift's wrap-around, and the pool averages
padding too; predictions of variable-length inputs (JPEG) then depend on the padding length.

Export-friendly: no boolean indexing, no in-place edits of inputs, the mask is downsampled by a ones-kernel
convolution, the cyclic shift is two slices and a concatenation on static shapes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models.layers.transformer import TransformerBlock
from models.registry import PaperCard, register

CARD = PaperCard(title="Bytes Are All You Need: Transformers Operating Directly On File Bytes", arxiv="2306.00238",
                 code="https://github.com/apple/corenet/tree/main/projects/byteformer", key="byteformer")
PAD = 256  # the embedding row of padding (byte values are 0..255)


@dataclass
class ModelArgs:
    num_classes: int = 10
    dim: int = 64
    heads: int = 4
    depth: int = 4
    ffn_dim: int = 256
    kernel: int = 4                    # Conv1d kernel; stride kernel // 2
    window: int = 32                   # attention window (tokens)
    merges: tuple[bool, ...] = (True, False, True, False)  # token merging after layer i
    max_tokens: int = 1024             # positional table: longest sequence after the convolution
    max_bytes: int = 2048              # the fixed input length of the exported graph
    upstream_compat: bool = False      # reproduce corenet's unmasked attention and pool (released checkpoints)

    def __post_init__(self) -> None:
        sizes = {k: getattr(self, k) for k in ("num_classes", "dim", "heads", "depth", "ffn_dim", "max_tokens")}
        bad = [f"{k}={v!r}" for k, v in sizes.items() if isinstance(v, bool) or not isinstance(v, int) or v < 1]
        if bad or self.dim % self.heads:
            raise ValueError(f"{', '.join(bad) or f'dim={self.dim}'} must be integers >= 1 with dim divisible by heads")
        if not isinstance(self.merges, (list, tuple)):
            raise ValueError(f"merges={self.merges!r} must be a list of {self.depth} true/false flags")
        self.merges = tuple(bool(m) for m in self.merges)
        if len(self.merges) != self.depth:
            raise ValueError(f"merges has {len(self.merges)} flags for depth={self.depth}")
        if self.kernel < 2 or self.kernel % 2 or self.window < 2 or self.window % 2:
            raise ValueError(f"kernel={self.kernel} and window={self.window} must be even and >= 2")
        if self.max_bytes < self.kernel or reduced_length(self.max_bytes, self.kernel) > self.max_tokens:
            raise ValueError(f"max_bytes={self.max_bytes} gives {reduced_length(self.max_bytes, self.kernel)} "
                             f"tokens, more than max_tokens={self.max_tokens} (or fewer bytes than the kernel)")

    @classmethod
    def tiny(cls) -> "ModelArgs":
        return cls(dim=16, heads=2, depth=2, ffn_dim=32, window=8, merges=(True, False), max_tokens=256,
                   max_bytes=256)

    @classmethod
    def nano(cls) -> "ModelArgs":
        """Card 06's small-scale BF-nano: d 64, 4 heads, 4 layers, window 32, k 4, 2 token merges."""
        return cls()

    @classmethod
    def deploy(cls) -> "ModelArgs":
        """BF-Ti (ImageNet JPEG Q60 recipe): d 192, 12 layers, 3 heads, FFN 768, k 4, window 128, merges after
        layers T,T,F,T,F,T,F,T,F,T,F,F, 50,000 positions; exported at 12,288 bytes (a 224x224 RGB JPEG at
        quality 60 is ~8-12 kB)."""
        return cls(num_classes=1000, dim=192, heads=3, depth=12, ffn_dim=768, kernel=4, window=128,
                   merges=(True, True, False, True, False, True, False, True, False, True, False, False),
                   max_tokens=50_000, max_bytes=12_288)


def reduced_length(n_bytes: int, kernel: int) -> int:
    """Tokens after the strided convolution (no padding)."""
    return (n_bytes - kernel) // (kernel // 2) + 1


def _pad_to(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """(B, T, ...) zero-padded along T to a multiple of `multiple` (no op when it already is)."""
    extra = -x.shape[1] % multiple
    return x if not extra else torch.cat([x, x.new_zeros(x.shape[0], extra, *x.shape[2:])], 1)


def _roll(x: torch.Tensor, shift: int) -> torch.Tensor:
    """torch.roll(x, -shift, dims=1) as two slices and a concatenation (every converter has those)."""
    return x if not shift else torch.cat([x[:, shift:], x[:, :shift]], 1)


def shift_groups(n: int, window: int, shift: int) -> torch.Tensor:
    """(n // window, 1, window, window) 1/0: which rolled tokens may attend to which inside each window. Rolling by
    `shift` puts the first `shift` tokens at the end: they attend only among themselves. Built in numpy: a constant
    of the exported graph."""
    wrapped = (np.arange(n) >= n - shift).reshape(n // window, window)
    return torch.from_numpy((wrapped[:, None, :, None] == wrapped[:, None, None, :]).astype(np.float32))


class TokenMerging(nn.Module):
    """Neighbour pairs concatenated (B, T, d) -> (B, T/2, 2d) -> Linear(2d, d, no bias) -> LayerNorm."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(2 * dim, dim, bias=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _pad_to(x, 2)
        return self.norm(self.reduction(x.reshape(x.shape[0], x.shape[1] // 2, 2 * x.shape[2])))


@register("byteformer", ModelArgs, CARD, task="bytes")  # not an image classifier: own trainer
class ByteFormer(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.args = args
        d = args.dim
        self.embeddings = nn.Embedding(PAD + 1, d, padding_idx=PAD)
        self.token_reduction_net = nn.Conv1d(d, d, args.kernel, stride=args.kernel // 2, bias=False)
        self.pos_embed = nn.Parameter(torch.randn(args.max_tokens, d) * d ** -0.5)
        self.transformer = nn.ModuleList(TransformerBlock(d, args.heads, args.ffn_dim / d) for _ in range(args.depth))
        self.downsamplers = nn.ModuleDict({f"downsample_{i}": TokenMerging(d) for i, m in enumerate(args.merges) if m})
        self.post_transformer_norm = nn.LayerNorm(d)
        self.classifier = nn.Linear(d, args.num_classes)
        self.register_buffer("ones_kernel", torch.ones(1, 1, args.kernel), persistent=False)

    def example_inputs(self, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens int32 (B, max_bytes), mask float32 (B, max_bytes)): the exported graph's inputs."""
        n = self.args.max_bytes
        tokens = torch.randint(0, 256, (batch, n), generator=torch.Generator().manual_seed(0), dtype=torch.int32)
        mask = (torch.arange(n) < max(self.args.kernel, 3 * n // 4)).float().expand(batch, n).contiguous()
        return tokens, mask

    input_names = ("tokens", "mask")

    def exportable(self) -> "ByteFormer":
        """At the fixed export length only the first reduced_length(max_bytes) positions are reachable: the exported
        copy keeps those rows of the positional table (BF-Ti: 6,143 of 50,000 rows, 8.4M fewer parameters)."""
        n = reduced_length(self.args.max_bytes, self.args.kernel)
        if n >= self.args.max_tokens:
            return self
        copy = ByteFormer(dataclasses.replace(self.args, max_tokens=n))
        copy.load_state_dict({**self.state_dict(), "pos_embed": self.pos_embed.detach()[:n]})
        return copy.eval()

    def reduce_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """(B, L) byte validity -> (B, T) token validity: every byte of the token's window real."""
        k = self.args.kernel
        count = F.conv1d(mask[:, None], self.ones_kernel, stride=k // 2)[:, 0]   # (B, T) real bytes per window
        return (count - (k - 1)).clamp(0.0, 1.0)                                 # 1 where all k are real

    def attend(self, i: int, x: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        """Layer i on windows of `window` tokens, shifted by half a window in odd layers. x: (B, T, d)."""
        w = self.args.window
        shift = w // 2 if i % 2 else 0
        b, t, d = x.shape
        x = _roll(_pad_to(x, w), shift)                                  # (B, Tp, d)
        n = x.shape[1]
        mask = None
        if valid is not None:
            keys = _roll(_pad_to(valid, w), shift).reshape(b * n // w, 1, 1, w)   # (B*nW, 1, 1, W)
            if shift:  # (B, nW, 1, 1, W) x (nW, 1, W, W) -> (B*nW, 1, W, W)
                keys = (keys.reshape(b, n // w, 1, 1, w) * shift_groups(n, w, shift)).reshape(b * n // w, 1, w, w)
            mask = keys
        y = self.transformer[i](x.reshape(b * n // w, w, d), mask=mask)       # (B*nW, W, d)
        y = _roll(y.reshape(b, n, d), n - shift if shift else 0)
        return y if n == t else y[:, :t]  # a full-length slice exports as an alias, which Core ML lacks

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """tokens (B, L) integers in 0..255 (-1 or anything where mask is 0); mask (B, L) 1 real / 0 padding."""
        a = self.args
        mask = (tokens >= 0).float() if mask is None else mask
        # padding embeds as zeros (the padding row's value), by the mask: no boolean indexing, no in-place edit
        x = self.embeddings(tokens.clamp(min=0)) * mask[..., None]                         # (B, L, d)
        x = self.token_reduction_net(x.transpose(1, 2)).transpose(1, 2)                    # (B, T, d)
        t = x.shape[1]
        if t > a.max_tokens:
            raise ValueError(f"{tokens.shape[1]} bytes give {t} tokens, more than max_tokens={a.max_tokens}")
        x = x + (self.pos_embed if t == a.max_tokens else self.pos_embed[:t])
        valid = None if a.upstream_compat else self.reduce_mask(mask)        # (B, T)
        for i in range(a.depth):
            x = self.attend(i, x, valid)
            if f"downsample_{i}" in self.downsamplers:
                if valid is not None:
                    x = x * valid[..., None]
                    valid = _pad_to(valid, 2).reshape(x.shape[0], -1, 2).amax(-1)
                x = self.downsamplers[f"downsample_{i}"](x)
        x = self.post_transformer_norm(x)
        if valid is None:
            return self.classifier(x.mean(1))
        pooled = (x * valid[..., None]).sum(1) / valid.sum(1, keepdim=True).clamp(min=1.0)
        return self.classifier(pooled)

