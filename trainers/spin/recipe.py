"""SPIN weight fusion as a training step: trained unshared checkpoint -> shared checkpoint.

    from trainers.spin.recipe import train_fused
    train_fused("zoo/spin_unshared", "zoo/spin_wf_mean", share=4, reduction="mean", epochs=3)

Plain shared/unshared models train with the generic loop: `edgezoo train trainers/spin/configs/spin_convmixer.yaml`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from models import checkpoint
from trainers.data import load_dataset
from trainers.loop import evaluate, finetune
from trainers.spin import fusion
from trainers.spin.bn import precise_bn


def check_fusion(model: nn.Module, source: Path, share: int, mapping: str, reduction: str) -> None:
    """Everything `train_fused` needs from its inputs, checked before any data is loaded: an unshared SPIN-capable
    source, a share count that divides its depth, a known mapping and reduction."""
    from models.errors import RecipeError
    from models.layers.sharing import MAPPINGS

    attr = getattr(model, "shared_attr", None)
    depth = getattr(getattr(model, "args", None), "depth", None)
    if attr is None or depth is None:
        raise RecipeError(f"{source} is a {getattr(model, 'registry_name', type(model).__name__)!r} checkpoint, "
                          "not a SPIN-capable one", "pass an unshared spin_convmixer or vit checkpoint (share=0)")
    unique = len(getattr(model, attr))
    if unique != depth:
        raise RecipeError(f"{source} already shares its weights ({unique} unique for {depth} layers)",
                          "weight fusion starts from the unshared model: pass a checkpoint trained with share=0")
    if not 1 <= share <= depth or depth % share:
        ok = [u for u in range(1, depth + 1) if depth % u == 0]
        raise RecipeError(f"--share {share} does not split {depth} layers into equal groups",
                          f"use one of {', '.join(map(str, ok))}")
    if mapping not in MAPPINGS:
        raise RecipeError(f"unknown mapping {mapping!r}", f"use one of: {', '.join(MAPPINGS)}")
    if reduction not in fusion.REDUCTIONS:
        raise RecipeError(f"unknown reduction {reduction!r}", f"use one of: {', '.join(fusion.REDUCTIONS)}")


def train_fused(source: Path | str, out_dir: Path | str, share: int, mapping: str = "sequential",
                reduction: str = "mean", epochs: int = 3, lr: float = 1e-3, seed: int = 0) -> dict[str, Any]:
    """Fuse an unshared checkpoint into `share` unique weights (WF init), fine-tune, fuse, save; returns metrics."""
    model, card = checkpoint.load(Path(source))
    check_fusion(model, Path(source), share, mapping, reduction)
    data = load_dataset(card.get("dataset", "digits"))
    torch.manual_seed(seed)
    shared = fusion.prepare(model, share, mapping, reduction, mapping_seed=seed)
    finetune(shared, data.train, epochs, lr=lr, seed=seed)
    precise_bn(fusion.fuse(shared), data.train.x)
    metrics = {"val_accuracy": evaluate(shared, data.val.x, data.val.y)["accuracy"],
               "test_accuracy": evaluate(shared, data.test.x, data.test.y)["accuracy"], "test_n": len(data.test.y)}
    spin = {"source_checkpoint": str(Path(source).resolve()), "source_sha256": checkpoint.checkpoint_hash(Path(source)),
            "reduction": reduction, "mapping": mapping, "share": share, "finetune_epochs": epochs, "lr": lr}
    checkpoint.save(shared, Path(out_dir), {"dataset": card.get("dataset", "digits"), "spin_fusion": spin,
                                             "metrics": metrics})
    return metrics
