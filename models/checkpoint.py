"""Checkpoint directories: `model.safetensors` (weights) + `card.json` (model, args, paper, metrics, data hash).

Weights load through safetensors only: nothing here unpickles a file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Any, Optional

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
    for key, hint in CARD_FIELDS.items():
        if key in card and not type_fits(card[key], hint):
            raise CheckpointError(f"checkpoint card {card_path}: field {key!r} is {card[key]!r}, not {type_name(hint)}",
                                  "retrain with `edgezoo train` or restore card.json")
    return card


CARD_FIELDS: dict[str, Any] = {"model": str, "args": dict, "task": Optional[str]}


def type_fits(value: Any, hint: Any) -> bool:
    """Whether plain data (JSON / YAML) fits a dataclass field's type: int (not bool), float (int accepted), str,
    bool, dict, list/tuple (either, element types checked), X | None; anything else is not checked."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(type_fits(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if dict in (hint, origin):
        return isinstance(value, dict)
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if not args:
            return True
        if origin is list or args[-1] is Ellipsis:
            return all(type_fits(v, args[0]) for v in value)
        return len(args) == len(value) and all(type_fits(v, a) for v, a in zip(value, args))
    return True


def type_name(hint: Any, article: bool = True) -> str:
    """`an int`, `a list of int`, `a str or None`: how a field's type is named in an error message."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a, article) for a in args)
    if hint is type(None):
        return "None"
    if origin in (list, tuple) and args:
        name = f"list of {type_name(args[0], article=False)}"
    else:
        name = getattr(origin or hint, "__name__", str(hint))
    return (("an " if name[0] in "aeiou" else "a ") if article else "") + name


def mismatched_fields(cls: type, values: dict[str, Any]) -> list[str]:
    """`key=value (want T)` for every value that does not fit its dataclass field's type (unknown keys skipped)."""
    hints = typing.get_type_hints(cls)
    return [f"{k}={v!r} (want {type_name(hints[k])})" for k, v in values.items()
            if k in hints and not type_fits(v, hints[k])]


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
    model = _build_from_card(card, ckpt_dir / CARD)
    try:
        model.load_state_dict(state, strict=True)
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"weights {weights} do not fit model {card['model']!r} ({str(e).splitlines()[0][:160]})",
                              "check that card.json and model.safetensors come from the same training run") from None
    return model.eval(), card


def _build_from_card(card: dict[str, Any], card_path: Path) -> nn.Module:
    """The model a card describes; an unknown model or args that do not fit it are CheckpointErrors."""
    fix = "retrain with `edgezoo train` or restore card.json"
    try:
        spec = get(card["model"])
    except KeyError as e:
        raise CheckpointError(f"checkpoint card {card_path}: {str(e).strip(chr(34))}", fix) from None
    bad = mismatched_fields(spec.args_cls, card["args"])
    if bad:
        raise CheckpointError(f"checkpoint card {card_path}: args {', '.join(bad)}", fix)
    try:
        return build(card["model"], card["args"])
    except (KeyError, ValueError, TypeError, RuntimeError, ZeroDivisionError, IndexError) as e:
        raise CheckpointError(f"checkpoint card {card_path}: args do not build a {card['model']} "
                              f"({str(e).strip(chr(34)).splitlines()[0][:160]})", fix) from None


def load_lm(ckpt_dir: Path) -> tuple[nn.Module, dict[str, Any]]:
    """`load`, refusing checkpoints that are not language models (speculative decoding, LM benchmarks)."""
    model, card = load(ckpt_dir)
    if card.get("task") != "lm":
        raise CheckpointError(f"{ckpt_dir} is a {card.get('task')!r} checkpoint, not a language model",
                              "pass an LM checkpoint made by `edgezoo lm train` or `edgezoo lm import`")
    return model, card


def checkpoint_hash(ckpt_dir: Path) -> str:
    """Content hash of a checkpoint: its weights file (the card's metrics do not change what is exported)."""
    read_card(ckpt_dir)  # a missing folder or card is named as such
    try:
        return file_sha256(Path(ckpt_dir) / WEIGHTS)
    except OSError as e:
        raise CheckpointError(f"checkpoint {ckpt_dir} has no readable {WEIGHTS} ({e.__class__.__name__})",
                              "retrain with `edgezoo train` or restore the file") from None


def annotate_card(ckpt_dir: Path, **fields: Any) -> dict[str, Any]:
    """Add fields to a checkpoint's card.json (atomically: a killed job leaves the old card). The weights and so
    the checkpoint hash do not change."""
    card = {**read_card(ckpt_dir), **fields}
    path = Path(ckpt_dir) / CARD
    tmp = path.with_name(CARD + ".tmp")
    tmp.write_text(json.dumps(card, indent=2, sort_keys=True))
    tmp.replace(path)
    return card
