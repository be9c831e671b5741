"""Shared fixtures: tiny trained checkpoints (one per registered model), made once per session."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import models
from trainers.loop import train
from trainers.recipe import Recipe


# trainers.data datasets by a model's (input channels, image size): digits, or colour scenes for RGB models
DATASET_BY_INPUT = {(1, 8): "digits", (1, 16): "digits16", (1, 32): "digits32", (3, 32): "scenes_colour"}


def tiny_input(name: str) -> tuple[int, int]:
    """(channels, image size) of a registered model's tiny configuration."""
    args = models.get(name).args_cls.tiny()
    return getattr(args, "in_channels", 1), getattr(args, "image_size", 8)


def tiny_dataset(name: str) -> str:
    return DATASET_BY_INPUT[tiny_input(name)]


def tiny_recipe(name: str, epochs: int = 2) -> Recipe:
    args = dataclasses.asdict(models.get(name).args_cls.tiny())
    return Recipe(name=f"tiny_{name}", model=name, model_args=args, epochs=epochs, batch_size=128, lr=0.01,
                  dataset=tiny_dataset(name))


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
