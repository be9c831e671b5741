"""Nothing a user did not name is written, replaced or deleted: output folders of `exporters` and `edgezoo lm export`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exporters.artifact import export_checkpoint
from exporters.compression.spec import parse_spec
from models.errors import ConversionError
from tests.app.cli_harness import assert_clean_failure, invoke


def _user_files(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "thesis.tex").write_text("years of work")
    (folder / "sub").mkdir(exist_ok=True)
    (folder / "sub" / "data.csv").write_text("1,2,3")
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("force", [False, True])
def test_out_folder_with_user_files_is_refused_even_with_force(tiny_checkpoint, tmp_path, capsys, force) -> None:
    out = tmp_path / "mine"
    before = _user_files(out)
    argv = ["torch", str(tiny_checkpoint), "--out", str(out), "--workspace", str(tmp_path / "ws")] + (["--force"] if force else [])
    assert_clean_failure(argv, capsys, tmp_path, prog="exporters", mentions="not made by EdgeZoo")
    assert _snapshot(out) == before


def test_out_dotdot_does_not_empty_the_parent(tiny_checkpoint, tmp_path, capsys, monkeypatch) -> None:
    parent = tmp_path / "project"
    before = _user_files(parent)
    (parent / "some" / "dir").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert_clean_failure(["torch", str(tiny_checkpoint), "--out", "project/some/dir/../..", "--workspace", str(tmp_path / "ws")],
                         capsys, tmp_path, prog="exporters", mentions="not made by EdgeZoo")
    assert {k: v for k, v in _snapshot(parent).items()} == before


def test_out_is_resolved_from_the_callers_directory(tiny_checkpoint, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = invoke(["torch", str(tiny_checkpoint), "--out", "rel/art", "--workspace", str(tmp_path / "ws")], capsys, "exporters")
    assert res.code == 0, res.err
    assert json.loads(res.out)["artifact"] == str(tmp_path / "rel" / "art")
    assert (tmp_path / "rel" / "art" / "manifest.json").exists()


def test_another_edgezoo_artifact_needs_force_and_only_then_is_replaced(tiny_checkpoint, tmp_path, capsys) -> None:
    out = tmp_path / "art"
    export_checkpoint(tiny_checkpoint, "torch", "none", out_dir=out)
    first = _snapshot(out)
    assert invoke(["torch", str(tiny_checkpoint), "-c", "none", "--out", str(out)], capsys, "exporters").code == 0
    assert _snapshot(out) == first  # identical request: reused, not rewritten
    assert_clean_failure(["torch", str(tiny_checkpoint), "-c", "fp16", "--out", str(out)], capsys, tmp_path,
                         prog="exporters", mentions="--force")
    assert _snapshot(out) == first
    res = invoke(["torch", str(tiny_checkpoint), "-c", "fp16", "--out", str(out), "--force"], capsys, "exporters")
    assert res.code == 0, res.err
    assert json.loads((out / "manifest.json").read_text())["compression_name"] == "fp16"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging or replaced folder left


def test_out_that_is_a_file_is_refused(tiny_checkpoint, tmp_path, capsys) -> None:
    out = tmp_path / "notes.txt"
    out.write_text("keep me")
    assert_clean_failure(["torch", str(tiny_checkpoint), "--out", str(out)], capsys, tmp_path, prog="exporters",
                         mentions="not a folder")
    assert out.read_text() == "keep me"


def test_failed_conversion_leaves_nothing_behind(tiny_checkpoint, tmp_path, monkeypatch) -> None:
    import exporters.onnx as onnx_exporter

    def explode(*args, **kwargs):
        raise RuntimeError("aten.frobnicate.default is not supported")

    monkeypatch.setattr(onnx_exporter, "export", explode)
    with pytest.raises(ConversionError) as err:
        export_checkpoint(tiny_checkpoint, "onnx", "none", out_dir=tmp_path / "a")
    assert "aten.frobnicate" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_int8_block_sizes_get_their_own_default_folder() -> None:
    names = {parse_spec(s).name for s in ("int8", "int8:block=32", "int8:block=64", "int4", "int4:block=64")}
    assert len(names) == 5


def test_two_lm_checkpoints_never_share_a_default_export(tmp_path, capsys) -> None:
    import torch

    from models import checkpoint
    from models.openelm import ModelArgs, OpenELM

    ckpts = []
    for seed, name in ((0, "a"), (1, "b")):
        torch.manual_seed(seed)
        ckpts.append(checkpoint.save(OpenELM(ModelArgs.tiny()), tmp_path / "zoo" / name, {"tokenizer": "bytes"}))
    ws = tmp_path / "ws"
    outs = []
    for ckpt in ckpts:
        res = invoke(["lm", "export", str(ckpt), "-f", "torch", "-w", str(ws)], capsys)
        assert res.code == 0, res.err
        outs.append(res.out.strip().splitlines()[-1])
    assert outs[0] != outs[1]
    shas = [json.loads((Path(o) / "lm_manifest.json").read_text())["checkpoint_sha256"] for o in outs]
    assert shas[0] != shas[1]  # the first export was not overwritten by the second
