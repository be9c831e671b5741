"""Checkpoint directories: `model.safetensors` (weights) + `card.json` (model, args, paper, metrics, data hash).

Weights load through safetensors only: nothing here unpickles a file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from models.errors import CheckpointError
from models.registry import build, get

WEIGHTS = "model.safetensors"
CARD = "card.json"


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def args_to_dict(args: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(args)))


def save(model: nn.Module, out_dir: Path, card: dict[str, Any]) -> Path:
    """Write weights and card atomically enough that a killed job never leaves a half checkpoint."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = model.registry_name
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    tmp = out_dir / (WEIGHTS + ".tmp")
    save_file(state, str(tmp), metadata={"model": name})
    tmp.replace(out_dir / WEIGHTS)
    spec = get(name)
    full = {
        "model": name,
        "args": args_to_dict(model.args),
        "paper": dataclasses.asdict(spec.card),
        "task": spec.task,
        **card,
        "weights_sha256": file_sha256(out_dir / WEIGHTS),
    }
    (out_dir / CARD).write_text(json.dumps(full, indent=2, sort_keys=True))
    return out_dir


def read_card(ckpt_dir: Path) -> dict[str, Any]:
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.exists():
        raise CheckpointError(f"checkpoint {ckpt_dir} does not exist",
                              "pass a folder made by `edgezoo train` (it holds model.safetensors and card.json)")
    if ckpt_dir.is_file():
        raise CheckpointError(f"{ckpt_dir} is a file, not a checkpoint folder",
                              "pass the folder that holds model.safetensors and card.json")
    card_path = ckpt_dir / CARD
    try:
        card = json.loads(card_path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {ckpt_dir} has no {CARD}",
                              "retrain with `edgezoo train` or restore the folder") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"checkpoint card {card_path} is corrupt ({e.__class__.__name__})",
                              "retrain with `edgezoo train` or restore the file") from None
    if not isinstance(card, dict) or "model" not in card or "args" not in card:
        raise CheckpointError(f"checkpoint card {card_path} lacks 'model'/'args'",
                              "retrain with `edgezoo train` or restore the file")
    return card


def load(ckpt_dir: Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model from its card and load weights strictly; every failure is a CheckpointError."""
    ckpt_dir = Path(ckpt_dir)
    card = read_card(ckpt_dir)
    weights = ckpt_dir / WEIGHTS
    if not weights.exists():
        raise CheckpointError(f"checkpoint {ckpt_dir} has no {WEIGHTS}",
                              "retrain with `edgezoo train` or restore the file")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"weights {weights} are corrupt or truncated ({str(e).splitlines()[0][:120]})",
                              "retrain with `edgezoo train` or restore the file") from None
    try:
        model = build(card["model"], card["args"])
        model.load_state_dict(state, strict=True)
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"weights {weights} do not fit model {card['model']!r} ({str(e).splitlines()[0][:160]})",
                              "check that card.json and model.safetensors come from the same training run") from None
    return model.eval(), card


def load_lm(ckpt_dir: Path) -> tuple[nn.Module, dict[str, Any]]:
    """`load`, refusing checkpoints that are not language models (speculative decoding, LM benchmarks)."""
    model, card = load(ckpt_dir)
    if card.get("task") != "lm":
        raise CheckpointError(f"{ckpt_dir} is a {card.get('task')!r} checkpoint, not a language model",
                              "pass an LM checkpoint made by `edgezoo lm train` or `edgezoo lm import`")
    return model, card


def checkpoint_hash(ckpt_dir: Path) -> str:
    """Content hash of a checkpoint: its weights file (the card's metrics do not change what is exported)."""
    return file_sha256(Path(ckpt_dir) / WEIGHTS)
