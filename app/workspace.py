"""A workspace folder holds everything a run produces: zoo/ (checkpoints), artifacts/, results.db, reports/."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from models.errors import EdgeZooError

DEFAULT = "edgezoo-workspace"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


class WorkspaceError(EdgeZooError):
    pass


def safe_name(name: object, what: str = "name") -> str:
    """A folder name taken from a recipe, a flag or a card: one plain path component, so that whatever is
    written under it stays inside the workspace (no separators, no '..', no absolute paths)."""
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith("."):
        raise WorkspaceError(f"{what} {name!r} is not a plain folder name",
                             "use letters, digits, '.', '_', '+' or '-' (1-128 characters, no '/' or '..')")
    return name


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def resolve(cls, path: str | Path | None = None) -> "Workspace":
        raw = Path(path or os.environ.get("EDGEZOO_WORKSPACE") or DEFAULT).expanduser()
        try:
            root = raw.resolve()
        except (RuntimeError, OSError) as e:  # a symlink loop, an unreadable parent
            raise WorkspaceError(f"workspace {raw} cannot be resolved ({e.__class__.__name__}: {e})",
                                 "pass --workspace a folder path without symlink loops") from None
        if root.exists() and not root.is_dir():
            raise WorkspaceError(f"workspace {raw} is a file, not a folder",
                                 "pass --workspace a folder (it is created if missing), or move the file aside")
        return cls(root)

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

    def checkpoint_dir(self, name: str) -> Path:
        """WORKSPACE/zoo/NAME for a validated NAME."""
        return self.zoo / safe_name(name, "checkpoint name")

    def store(self):
        from profiles.store import Store

        return Store(self.store_path)
