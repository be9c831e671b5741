"""Bad checkpoints give one-line CheckpointErrors naming the problem and the fix; nothing is unpickled."""

from __future__ import annotations

import os
import shutil

import pytest

import models
from models import checkpoint
from models.errors import CheckpointError
from models.registry import build


@pytest.fixture
def ckpt(tmp_path):
    model = build("resnet", models.get("resnet").args_cls.tiny())
    return checkpoint.save(model, tmp_path / "ck", {})


def test_missing_path(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="does not exist.*edgezoo train"):
        checkpoint.load(tmp_path / "nothing")


def test_truncated_weights(ckpt) -> None:
    w = ckpt / checkpoint.WEIGHTS
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        checkpoint.load(ckpt)


def test_random_bytes_weights(ckpt) -> None:
    (ckpt / checkpoint.WEIGHTS).write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match="corrupt or truncated") as err:
        checkpoint.load(ckpt)
    assert "\n" not in str(err.value)


def test_pickle_file_is_not_loaded(ckpt) -> None:
    import pickle

    (ckpt / checkpoint.WEIGHTS).write_bytes(pickle.dumps({"evil": 1}))
    with pytest.raises(CheckpointError):
        checkpoint.load(ckpt)


def test_corrupt_card(ckpt) -> None:
    (ckpt / checkpoint.CARD).write_text("{not json")
    with pytest.raises(CheckpointError, match="card .* is corrupt"):
        checkpoint.load(ckpt)


def test_weights_from_another_model(ckpt, tmp_path) -> None:
    other = checkpoint.save(build("convmixer", models.get("convmixer").args_cls.tiny()), tmp_path / "other", {})
    shutil.copy(other / checkpoint.WEIGHTS, ckpt / checkpoint.WEIGHTS)
    with pytest.raises(CheckpointError, match="do not fit model 'resnet'"):
        checkpoint.load(ckpt)
