"""A workspace folder holds everything a run produces: zoo/ (checkpoints), artifacts/, results.db, reports/."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT = "edgezoo-workspace"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def resolve(cls, path: str | Path | None = None) -> "Workspace":
        return cls(Path(path or os.environ.get("EDGEZOO_WORKSPACE") or DEFAULT).resolve())

    @property
    def zoo(self) -> Path:
        return self.root / "zoo"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def store_path(self) -> Path:
        return self.root / "results.db"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    def store(self):
        from profiles.store import Store

        return Store(self.store_path)
