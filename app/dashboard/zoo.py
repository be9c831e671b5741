"""The zoo: trained checkpoints (card.json only; weights are never loaded here) and claim-check results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import yaml

from app.dashboard import data as D
from app.workspace import Workspace
from trainers.claims import label_verdict
from trainers.papers import Paper


def cards(ws: Workspace) -> list[tuple[Path, dict[str, Any] | str]]:
    """(checkpoint dir, card) for each checkpoint in ws.zoo; a card that cannot be read is its error text."""
    out: list[tuple[Path, dict[str, Any] | str]] = []
    for path in sorted(ws.zoo.glob("*/card.json")) if ws.zoo.exists() else []:
        try:
            out.append((path.parent, json.loads(path.read_text())))
        except (OSError, ValueError) as e:
            out.append((path.parent, f"unreadable card.json ({e.__class__.__name__}: {e})"))
    return out


def history(ckpt: Path, card: dict[str, Any]) -> list[dict[str, Any]]:
    """The full training curve: the `last/` card has every epoch, the best card stops at the best epoch."""
    try:
        return json.loads((ckpt / "last" / "card.json").read_text()).get("history") or card.get("history") or []
    except (OSError, ValueError):
        return card.get("history") or []


def verdict_label(verdict: Any, quick: Any) -> str:
    """The verdict as `edgezoo reproduce` labels it ('pass (quick)' for a quick run), also for rows stored before
    quick verdicts were labelled; an unknown word is shown as it is."""
    try:
        return label_verdict(str(verdict), bool(pd.notna(quick) and quick))
    except ValueError:
        return str(verdict)


def claims(ws: Workspace) -> pd.DataFrame | None:
    """Every stored claim check (newest first) with its claim, reason, the paper's numbers and ours (`measured`),
    verdict labelled; None when the store has no claims table."""
    if not D.table_exists(ws, "claims"):
        return None
    df = D.read_table(ws, "claims").sort_values("id", ascending=False)
    parsed = df.pop("result").map(_json)
    for col in ("claim", "reason", "paper_numbers", "measured"):
        df[col] = parsed.map(lambda r, c=col: r.get(c))
    df["verdict"] = [verdict_label(v, q) for v, q in zip(df["verdict"], df["quick"])]
    return df


def shown(claims_df: pd.DataFrame) -> pd.DataFrame:
    """The claims table without its nested columns (the numbers are shown on the Papers page)."""
    return claims_df.drop(columns=["paper_numbers", "measured"])


def _json(text: str) -> dict[str, Any]:
    try:
        out = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return out if isinstance(out, dict) else {}


def recipe_name(path: Path) -> str:
    """A recipe's name, which names its zoo folder: its `name:` or else the file's stem."""
    try:
        name = (yaml.safe_load(path.read_text()) or {}).get("name")
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        name = None
    return str(name) if name else path.stem


def deployed_checkpoints(paper: Paper) -> list[str]:
    """The zoo folders `edgezoo run` trains for this paper."""
    return [recipe_name(paper.recipe_path(d.recipe)) for d in paper.deployables]


def paper_keys(ckpt: Path, card: dict[str, Any], plugins: Iterable[Paper]) -> set[str]:
    """The paper plug-ins a checkpoint belongs to: those that deploy a checkpoint of this name, else the key on its
    model's paper card, else the plug-ins that bring its model."""
    plugins = list(plugins)
    deployed = {p.key for p in plugins if ckpt.name in deployed_checkpoints(p)}
    if deployed:
        return deployed
    if key := (card.get("paper") or {}).get("key"):
        return {str(key)}
    return {p.key for p in plugins if card.get("model") in p.models}


def claim_rows(all_claims: pd.DataFrame | None, keys: set[str]) -> pd.DataFrame | None:
    """Claim checks of these paper keys, newest first."""
    if all_claims is None:
        return None
    return all_claims[all_claims["paper"].astype(str).isin(keys)]
