"""CLIP on procedural scenes with light dense heads (CLIP meets model-zoo experts, card 08), and its deployable
zero-shot classifier.

`SceneCLIP` (training): the scene image encoder (models/scene_encoder.py: 4 conv blocks, an 8x8 feature map on
32x32 scenes, pooled and projected to the joint space), the bag-of-words text encoder (models/text_bow.py) and,
optionally, a segmentation head and a depth head: one 1x1 convolution each on the encoder's feature map, bilinearly
upsampled to the input size (card: light heads, so the backbone, not the head, absorbs the task).

`ZeroShotScene` (deployed, registered as "scene_clip_zeroshot"): the image encoder plus the text embeddings of a
fixed prompt set stored as a constant (K, D) matrix, so on-device zero-shot is the encoder and one matmul (card
section 6): logits = s * normalize(f(x)) @ P^T, P the L2-normalised prompt embeddings, s the learned logit scale
(the product s * P is the stored constant).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from models.registry import PaperCard, register
from models.scene_encoder import SceneEncoder, SceneEncoderArgs
from models.text_bow import BagOfWordsArgs, BagOfWordsEncoder

CARD = PaperCard(
    title="CLIP meets Model Zoo Experts: Pseudo-Supervision for Visual Enhancement",
    arxiv="2310.14108",
    # no public implementation; the nearest building block is corenet's CLIP
    code="https://github.com/apple/corenet/blob/main/corenet/modeling/models/multi_modal_img_text/clip.py",
    key="clip-experts",
)


@dataclass
class SceneCLIPArgs:
    image_size: int = 32
    channels: list[int] = field(default_factory=lambda: [32, 48, 64, 96])
    strides: list[int] = field(default_factory=lambda: [2, 2, 1, 1])   # an 8x8 feature map on 32x32 scenes
    embed_dim: int = 64                     # joint image-text space
    vocab_size: int = 64                    # bag-of-words vocabulary (+1 for padding / unknown)
    text_dim: int = 64
    seg_classes: int = 0                    # > 0: a segmentation head with this many classes
    depth_head: bool = False

    @classmethod
    def tiny(cls) -> "SceneCLIPArgs":
        return cls(image_size=16, channels=[8, 8, 16, 16], embed_dim=8, vocab_size=16, text_dim=8, seg_classes=4,
                   depth_head=True)


def encoder_args(image_size: int, channels: list[int], strides: list[int], embed_dim: int) -> SceneEncoderArgs:
    return SceneEncoderArgs(in_channels=3, image_size=image_size, channels=tuple(channels), strides=tuple(strides),
                            embed_dim=embed_dim)


class SceneCLIP(nn.Module):
    def __init__(self, args: SceneCLIPArgs) -> None:
        super().__init__()
        self.args = args
        self.image = SceneEncoder(encoder_args(args.image_size, args.channels, args.strides, args.embed_dim))
        self.text = BagOfWordsEncoder(BagOfWordsArgs(args.vocab_size, args.text_dim, args.embed_dim))
        width = args.channels[-1]
        self.seg_head = nn.Conv2d(width, args.seg_classes, 1) if args.seg_classes else None
        self.depth_head = nn.Conv2d(width, 1, 1) if args.depth_head else None

    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, 3, H, W) images and (B, L) caption word ids -> image and text embeddings (B, D), and with heads
        segmentation logits (B, C, H, W) and depth (B, H, W)."""
        emb, fmap = self.image(x, return_map=True)
        out = {"image": emb, "text": self.text(ids)}
        size = x.shape[-2:]
        if self.seg_head is not None:
            out["seg"] = F.interpolate(self.seg_head(fmap), size=size, mode="bilinear", align_corners=False)
        if self.depth_head is not None:
            out["depth"] = F.interpolate(self.depth_head(fmap), size=size, mode="bilinear", align_corners=False)[:, 0]
        return out


@dataclass
class ZeroShotSceneArgs:
    in_channels: int = 3
    image_size: int = 32
    channels: list[int] = field(default_factory=lambda: [32, 48, 64, 96])
    strides: list[int] = field(default_factory=lambda: [2, 2, 1, 1])
    embed_dim: int = 64
    num_classes: int = 18                   # prompts: "a {colour} {shape}" for 6 colours x 3 shapes

    @classmethod
    def tiny(cls) -> "ZeroShotSceneArgs":
        return cls(image_size=32, channels=[8, 8, 16, 16], embed_dim=8, num_classes=6)  # 6: the scenes' colours

    @classmethod
    def deploy(cls) -> "ZeroShotSceneArgs":
        """The scene encoder's deployment size (SceneEncoderArgs.deploy: ResNet-18 stage widths at 224x224, not the
        paper's CLIP ViT-B/16) with CLIP's 512-d joint space and an ImageNet-1k zero-shot prompt matrix."""
        enc = SceneEncoderArgs.deploy()
        return cls(in_channels=enc.in_channels, image_size=enc.image_size, channels=list(enc.channels),
                   strides=list(enc.strides), embed_dim=512, num_classes=1000)


@register("scene_clip_zeroshot", ZeroShotSceneArgs, CARD)
class ZeroShotScene(nn.Module):
    def __init__(self, args: ZeroShotSceneArgs) -> None:
        super().__init__()
        if args.in_channels != 3 or args.num_classes < 1 or args.embed_dim < 1:
            raise ValueError(f"ZeroShotSceneArgs needs 3 input channels and num_classes, embed_dim >= 1, got {args}")
        self.args = args
        self.image = SceneEncoder(encoder_args(args.image_size, args.channels, args.strides, args.embed_dim))
        # the prompt matrix, scaled: s * normalize(P) / sqrt(D) (forward normalises f to norm sqrt(D))
        self.register_buffer("prompts", F.normalize(torch.randn(args.num_classes, args.embed_dim), dim=-1))

    @torch.no_grad()
    def set_prompts(self, prompts: torch.Tensor, scale: float) -> "ZeroShotScene":
        """Store (K, D) prompt text embeddings, L2-normalised and multiplied by the logit scale, as a constant."""
        if tuple(prompts.shape) != tuple(self.prompts.shape):
            raise ValueError(f"prompt matrix {tuple(prompts.shape)} does not match {tuple(self.prompts.shape)}")
        self.prompts.copy_(float(scale) * F.normalize(prompts.float(), dim=-1) / self.args.embed_dim ** 0.5)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, num_classes) logits s * cos(f(x), P_k). The image embedding is normalised with
        rsqrt of its mean square (export-friendly: no norm op), which gives norm sqrt(D), folded into `prompts`."""
        f = self.image(x)                                                           # (B, D)
        f = f * torch.rsqrt((f * f).mean(-1, keepdim=True) + 1e-12)
        return f @ self.prompts.t()
