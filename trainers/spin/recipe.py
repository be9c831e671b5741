"""SPIN weight fusion as a training step: trained unshared checkpoint -> shared checkpoint.

    from trainers.spin.recipe import train_fused
    train_fused("zoo/spin_unshared", "zoo/spin_wf_mean", share=4, reduction="mean", epochs=3)

Plain shared/unshared models train with the generic loop: `edgezoo train trainers/spin/configs/spin_convmixer.yaml`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from models import checkpoint
from trainers.data import load_dataset
from trainers.loop import evaluate, finetune
from trainers.spin import fusion
from trainers.spin.bn import precise_bn


def train_fused(source: Path | str, out_dir: Path | str, share: int, mapping: str = "sequential",
                reduction: str = "mean", epochs: int = 3, lr: float = 1e-3, seed: int = 0) -> dict[str, Any]:
    """Fuse an unshared checkpoint into `share` unique weights (WF init), fine-tune, fuse, save; returns metrics."""
    model, card = checkpoint.load(Path(source))
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
