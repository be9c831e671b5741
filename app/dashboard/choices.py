"""What the Run page offers, all from the registries and the workspace's folders (no hand-kept lists): zoo checkpoints
and their task (card.json), artifact folders, the compression specs a format supports for a task, the papers with a
claim, and the CLI's own option defaults. Import-light: nothing here imports torch until compression specs are asked
for (exporters.compression imports it)."""

from __future__ import annotations

import inspect
import json
from typing import Any, Callable

from app.workspace import Workspace
from exporters.formats import FORMATS, LM, task_of  # noqa: F401 - FORMATS for the pages

MANIFEST, LM_MANIFEST = "manifest.json", "lm_manifest.json"  # exporters.artifact's names (it imports torch)


def cards(ws: Workspace) -> dict[str, dict[str, Any]]:
    """{checkpoint folder: card} for every zoo checkpoint whose card.json reads as a mapping."""
    found = {}
    for path in sorted(ws.zoo.glob("*/card.json")) if ws.zoo.is_dir() else []:
        try:
            card = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(card, dict):
            found[str(path.parent)] = card
    return found


def checkpoints(ws: Workspace, task: str | None = None) -> dict[str, str]:
    """{checkpoint folder: its task (classification | lm)}, only those of `task` when given."""
    return {p: t for p, card in cards(ws).items() if task in (None, t := task_of(card))}


def spec_choices(fmt: str, task: str) -> list[str]:
    """Every compression spec name `fmt` exports with for `task`, as exporters.compression.spec parses them: its
    default specs and aliases first, one name per distinct spec."""
    from exporters.compression import spec as S
    from models.errors import EdgeZooError

    seen: dict[str, str] = {}
    for text in dict.fromkeys([*S.DEFAULT_SPECS, *S.LM_SPECS, *S.ALIASES, *S.METHODS]):
        try:
            parsed = S.parse_spec(text, fmt, task)
        except EdgeZooError:
            continue
        seen.setdefault(parsed.name, text)
    return list(seen.values())


def artifact_dirs(ws: Workspace, lm: bool) -> list[str]:
    """Artifact folders under WORKSPACE/artifacts: language-model ones (with lm_manifest.json) or the others."""
    if not ws.artifacts.is_dir():
        return []
    folders = {p.parent for p in ws.artifacts.rglob(MANIFEST)}
    return sorted(str(f) for f in folders if (f / LM_MANIFEST).exists() == lm)


def claims() -> dict[str, str]:
    """{paper key: its claim} for the paper plug-ins `edgezoo reproduce` can run."""
    from trainers.papers import discover

    return {key: p.claim_text or p.title for key, p in discover().items() if p.claim is not None}


def cli_default(command: Callable[..., Any], param: str) -> Any:
    """The default of a CLI command's option, as the CLI declares it (a typer OptionInfo or a plain default)."""
    default = inspect.signature(command).parameters[param].default
    return getattr(default, "default", default)


def cli_max(command: Callable[..., Any], param: str, otherwise: int) -> int:
    """The upper bound a CLI command declares for an integer option (`max=`), else `otherwise`."""
    high = getattr(inspect.signature(command).parameters[param].default, "max", None)
    return high if isinstance(high, int) else otherwise


def max_context(card: dict[str, Any]) -> int | None:
    """A language model's context length from its card's args, when it names one."""
    value = (card.get("args") or {}).get("max_context_length")
    return value if isinstance(value, int) and value > 0 else None
