"""A checkpoint trained from another one (a Label Refinery student from its refinery) is retrained when that one
changes: the main job's reuse hash covers the weights it is trained from."""

from __future__ import annotations

from pathlib import Path

import torch

from app.pipeline import Job, recipe_hash
from app.workspace import Workspace
from models import checkpoint
from models.registry import build
from trainers.adapters import train_classifier

RECIPE = Path(__file__).resolve().parents[2] / "trainers" / "baselines" / "configs" / "digits_resnet.yaml"


def test_reuse_hash_follows_the_checkpoints_a_job_needs(tmp_path) -> None:
    ws = Workspace.resolve(tmp_path / "ws")
    torch.manual_seed(0)
    checkpoint.save(build("resnet", {}), ws.checkpoint_dir("teacher"), {})
    plain = Job("p", "student", RECIPE, train_classifier, {}, "classify", ())
    taught = Job("p", "student", RECIPE, train_classifier, {}, "classify", (), needs=("teacher",))
    before = recipe_hash(taught, ws)
    assert before != recipe_hash(plain, ws) and before == recipe_hash(taught, ws)
    torch.manual_seed(1)
    checkpoint.save(build("resnet", {}), ws.checkpoint_dir("teacher"), {})  # the teacher is retrained
    assert recipe_hash(taught, ws) != before
    assert recipe_hash(plain, ws) == recipe_hash(plain, ws)
