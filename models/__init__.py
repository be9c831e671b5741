"""Architectures and their paper cards.

Kept import-light (no torch) so that `models.errors` is cheap; the registry loads the model modules on first use.
"""

from __future__ import annotations

from typing import Any

_REGISTRY_NAMES = ("PaperCard", "ModelSpec", "REGISTRY", "get", "build", "names", "register")


def __getattr__(name: str) -> Any:
    if name in _REGISTRY_NAMES:
        from models import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")
