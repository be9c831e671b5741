"""`edgezoo specdec bench|generate --runtime int4`: the packed-weight runtime from the CLI, and its bad input (an
unknown runtime, a model whose widths the int4 kernels cannot take) failing with one error line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from app.workspace import Workspace
from models import checkpoint
from models.openelm import ModelArgs, OpenELM
from tests.app.cli_harness import assert_clean_failure, invoke
from tests.models.test_quantspec_runtime import ARGS


@pytest.fixture(scope="module")
def lms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("quantspec-cli")
    torch.manual_seed(0)
    return {"packable": checkpoint.save(OpenELM(ARGS), root / "packable", {"note": "random init"}),
            "tiny": checkpoint.save(OpenELM(ModelArgs.tiny()), root / "tiny", {"note": "random init"}),
            "ws": root / "ws"}


def _bench(ckpt: Path, ws: Path, runtime: str) -> list[str]:
    return ["specdec", "bench", str(ckpt), "--gammas", "2", "--contexts", "16", "--tokens", "8", "--prompts", "1",
            "--kv-group", "8", "--residual", "8", "--runtime", runtime, "-w", str(ws)]


def test_bench_with_packed_weights_stores_a_record(lms, capsys) -> None:
    res = invoke(_bench(lms["packable"], lms["ws"], "int4"), capsys)
    assert res.code == 0, res.out + res.err
    rows = Workspace.resolve(lms["ws"]).store().rows()
    assert any(r["compression"] == "quantspec-w4kv4/8-int4" for r in rows)


def test_generate_with_packed_weights(lms, capsys) -> None:
    res = invoke(["specdec", "generate", str(lms["packable"]), "--prompt", "def ", "--tokens", "8",
                  "--kv-group", "8", "--residual", "8", "--runtime", "int4"], capsys)
    assert res.code == 0 and "accepted" in res.out, res.out + res.err


@pytest.mark.parametrize("which, runtime, mentions", [("packable", "int5", "unknown runtime"),
                                                      ("tiny", "int4", "cannot take")])
def test_bad_runtime_input_fails_cleanly(lms, capsys, tmp_path: Path, which: str, runtime: str, mentions: str) -> None:
    assert_clean_failure(_bench(lms[which], tmp_path / "ws", runtime), capsys, tmp_path / "ws", mentions=mentions)
    gen = ["specdec", "generate", str(lms[which]), "--tokens", "8", "--kv-group", "8", "--residual", "8",
           "--runtime", runtime]
    assert_clean_failure(gen, capsys, tmp_path / "ws", mentions=mentions)
