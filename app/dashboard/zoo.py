"""The zoo: trained checkpoints (card.json only; weights are never loaded here) and claim-check results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from app.dashboard import data as D
from app.workspace import Workspace


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


def claims(ws: Workspace) -> pd.DataFrame | None:
    """Every stored claim check (newest first) with its claim and reason; None when the store has no claims table."""
    if not D.table_exists(ws, "claims"):
        return None
    df = D.read_table(ws, "claims").sort_values("id", ascending=False)
    parsed = df["result"].map(_json)
    df["claim"] = parsed.map(lambda r: r.get("claim"))
    df["reason"] = parsed.map(lambda r: r.get("reason"))
    return df.drop(columns=["result"])


def _json(text: str) -> dict[str, Any]:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return {}


def claim_rows(all_claims: pd.DataFrame | None, ckpt: Path, card: dict[str, Any]) -> pd.DataFrame | None:
    """Claim checks about this checkpoint's paper (matched on the card's paper key, model, recipe, arXiv id or title)."""
    if all_claims is None:
        return None
    paper = card.get("paper") or {}
    keys = {str(v).lower() for v in (paper.get("key"), card.get("model"), ckpt.name, paper.get("arxiv"),
                                     paper.get("title")) if v}
    return all_claims[all_claims["paper"].astype(str).str.lower().isin(keys)]
