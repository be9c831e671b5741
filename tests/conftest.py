"""Shared fixtures: tiny trained checkpoints (one per registered model), made once per session."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import models
from trainers.loop import train
from trainers.recipe import Recipe


DATASET_BY_SIZE = {8: "digits", 16: "digits16", 32: "digits32"}  # trainers.data: digits at the model's input size


def tiny_recipe(name: str, epochs: int = 2) -> Recipe:
    args = dataclasses.asdict(models.get(name).args_cls.tiny())
    return Recipe(name=f"tiny_{name}", model=name, model_args=args, epochs=epochs, batch_size=128, lr=0.01,
                  dataset=DATASET_BY_SIZE[args.get("image_size", 8)])


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{model name: checkpoint dir} for every registered model, trained 2 epochs on digits."""
    root = tmp_path_factory.mktemp("ckpts")
    out = {}
    for name in models.names():
        train(tiny_recipe(name), root / name, progress=False)
        out[name] = root / name
    return out


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_checkpoints: dict[str, Path]) -> Path:
    return tiny_checkpoints["resnet"]


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory):
    """Claim models and SeedLM encodings go to a per-session cache, never the user's ~/.cache/edgezoo."""
    mp = pytest.MonkeyPatch()
    mp.setenv("EDGEZOO_CACHE", str(tmp_path_factory.mktemp("edgezoo-cache")))
    yield
    mp.undo()
