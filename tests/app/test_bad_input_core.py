"""Bad input to the core commands (`edgezoo run|train|export|profile|results|dashboard|report|reproduce|models` and
`exporters onnx|coreml|mlx|torch`): every row fails cleanly through the real entry point (one `error:` line that
names the problem, no traceback, not the catch-all for bugs, the store unchanged, nothing left behind) and before
anything is trained, measured, exported or served.

A row is (id, program, argv, mention): `{name}` in argv is a path from the `sandbox` fixture, `mention` a substring
the error line must hold. The id starts with the command, so the per-command counts can be read off the table."""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from models import checkpoint
from models.registry import build
from profiles.store import Store
from tests.app.cli_harness import assert_clean_failure, invoke
from tests.app.synthetic import make_record

E, X = "edgezoo", "exporters"


def _card_variant(src: Path, dst: Path, **fields) -> Path:
    """A copy of checkpoint `src` whose card.json has `fields` replaced (a value of None drops the field)."""
    shutil.copytree(src, dst)
    card = json.loads((dst / checkpoint.CARD).read_text())
    card.update(fields)
    (dst / checkpoint.CARD).write_text(json.dumps({k: v for k, v in card.items() if v is not None}))
    return dst


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A workspace with two records in its store, a random-init resnet checkpoint (nothing trained) and copies of
    it with one fault each, a file, an empty folder, a folder with files, a symlink loop, broken recipes and a busy
    port."""
    root = tmp_path_factory.mktemp("bad-core")
    p = {"root": root, "ws": root / "ws", "file": root / "file.txt", "dir": root / "dir", "full": root / "full",
         "loop": root / "loop", "missing": root / "missing"}
    store = Store(p["ws"] / "results.db")
    rng = random.Random(0)
    for i in range(2):
        store.add(make_record(i, rng))
    store.close()
    p["file"].write_text("not a folder")
    p["dir"].mkdir()
    (root / "dir.html").mkdir()
    p["full"].mkdir()
    (p["full"] / "notes.txt").write_text("someone's files")
    p["loop"].symlink_to(root / "loop2")
    (root / "loop2").symlink_to(p["loop"])
    ckpt = p["ckpt"] = checkpoint.save(build("resnet", dataclasses.asdict(build("resnet").args.tiny())),
                                       root / "ckpt", {"dataset": "digits"})
    p["args5"] = _card_variant(ckpt, root / "args5", args=5)
    p["model123"] = _card_variant(ckpt, root / "model123", model=123)
    p["classes_x"] = _card_variant(ckpt, root / "classes_x", args={"num_classes": "x"})
    p["task5"] = _card_variant(ckpt, root / "task5", task=5)
    p["nomodel"] = _card_variant(ckpt, root / "nomodel", model="nosuch")
    p["dataset"] = _card_variant(ckpt, root / "dataset", dataset="imagenet")
    p["lmcard"] = _card_variant(ckpt, root / "lmcard", task="lm")
    p["nocard"] = _card_variant(ckpt, root / "nocard")
    (p["nocard"] / checkpoint.CARD).unlink()
    p["badjson"] = _card_variant(ckpt, root / "badjson")
    (p["badjson"] / checkpoint.CARD).write_text("{not json")
    p["trunc"] = _card_variant(ckpt, root / "trunc")
    weights = p["trunc"] / checkpoint.WEIGHTS
    weights.write_bytes(weights.read_bytes()[:100])
    recipes = {"up.yaml": "model: resnet\nname: ../../escaped\n", "abs.yaml": f"model: resnet\nname: {root}/abs\n",
               "list.yaml": "- a\n- b\n", "broken.yaml": "model: [resnet\n", "bin.yaml": b"\xff\xfe\x00binary",
               "typed.yaml": "model: resnet\nepochs: three\n", "noname.yaml": "name: x\n"}
    for name, text in recipes.items():
        (root / name).write_bytes(text if isinstance(text, bytes) else text.encode())
        p[name.split(".")[0]] = root / name
    with socket.socket() as busy:  # a port something already listens on
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        yield {**p, "busy": busy.getsockname()[1]}


WS = ("-w", "{ws}")
TRAIN = ["train", "digits_resnet", "-w", "{ws}"]
PROFILE = ["profile", "{missing}.onnx", "-w", "{ws}"]


def _ws_rows(cmd: str, prog: str, argv: list[str]) -> list[tuple[str, str, list[str], str]]:
    """A workspace that is a file, a symlink loop, or a path under a file."""
    return [(f"{cmd}-ws-file", prog, [*argv, "-w", "{file}"], "is a file"),
            (f"{cmd}-ws-loop", prog, [*argv, "-w", "{loop}"], "symlink loop"),
            (f"{cmd}-ws-under-file", prog, [*argv, "-w", "{file}/ws"], "which is a file")]


def _export_rows(cmd: str, prog: str, head: list[str]) -> list[tuple[str, str, list[str], str]]:
    """Checkpoint, compression and --out faults for one export command line (`head` names the format)."""
    return [
        (f"{cmd}-ckpt-missing", prog, [*head, "{missing}"], "does not exist"),
        (f"{cmd}-ckpt-file", prog, [*head, "{file}"], "is a file"),
        (f"{cmd}-ckpt-empty-folder", prog, [*head, "{dir}"], "has no card.json"),
        (f"{cmd}-card-args-int", prog, [*head, "{args5}"], "field 'args' is 5"),
        (f"{cmd}-card-model-int", prog, [*head, "{model123}"], "field 'model' is 123"),
        (f"{cmd}-card-args-type", prog, [*head, "{classes_x}"], "num_classes='x'"),
        (f"{cmd}-weights-truncated", prog, [*head, "{trunc}"], "corrupt or truncated"),
        (f"{cmd}-compress-unknown", prog, [*head, "{ckpt}", "-c", "bogus"], "unknown compression spec"),
        (f"{cmd}-out-file", prog, [*head, "{ckpt}", "--out", "{file}"], "is a file, not a folder"),
        (f"{cmd}-out-under-file", prog, [*head, "{ckpt}", "--out", "{file}/art"], "cannot be created"),
    ]


CASES: list[tuple[str, str, list[str], str]] = [
    # --- run (all fail before the store is opened or a model trained)
    ("run-threads-negative", E, ["run", "--threads", "-1", *WS], "below 1"),
    ("run-threads-zero", E, ["run", "--threads", "0", *WS], "below 1"),
    ("run-threads-text", E, ["run", "--threads", "two", *WS], "valid integer"),
    ("run-threads-float", E, ["run", "--threads", "1.5", *WS], "valid integer"),
    ("run-format-unknown", E, ["run", "-f", "nosuch", *WS], "unknown format 'nosuch'"),
    ("run-format-one-unknown", E, ["run", "-f", "onnx", "-f", "tflite", *WS], "unknown format 'tflite'"),
    ("run-recipe-unknown", E, ["run", "-r", "nosuch", *WS], "recipe nosuch not found"),
    ("run-recipe-folder", E, ["run", "-r", "{dir}", *WS], "is a folder"),
    ("run-recipe-name-escapes", E, ["run", "-r", "{up}", *WS], "not a plain folder name"),
    ("run-set-epochs-text", E, ["run", "-r", "digits_resnet", "--set", "epochs=abc", *WS], "epochs='abc' is not an int"),
    ("run-set-batch-zero", E, ["run", "-r", "digits_resnet", "--set", "batch_size=0", *WS], "batch_size=0 is out of range"),
    ("run-set-unknown-key", E, ["run", "-r", "digits_resnet", "--set", "bogus=1", *WS], "unknown keys ['bogus']"),
    ("run-set-no-equals", E, ["run", "-r", "digits_resnet", "--set", "epochs", *WS], "not key=value"),
    ("run-set-name-shared", E, ["run", "-r", "digits_resnet", "-r", "digits_convmixer", "--set", "name=same", *WS],
     "both name the checkpoint 'same'"),
    ("run-set-key-another-paper-lacks", E, ["run", "--set", "epochs=3", *WS], "unknown keys ['epochs']"),
    ("run-papers-unknown", E, ["run", "--papers", "nosuch", *WS], "no paper plug-in 'nosuch'"),
    ("run-papers-one-unknown", E, ["run", "--papers", "lcs,nosuch", *WS], "no paper plug-in 'nosuch'"),
    ("run-set-lr-negative", E, ["run", "-r", "digits_resnet", "--set", "lr=-1", *WS], "lr=-1 is out of range"),
    *_ws_rows("run", E, ["run"]),
    # --- train (all fail before data is loaded or a checkpoint written)
    ("train-set-epochs-text", E, [*TRAIN, "--set", "epochs=abc"], "epochs='abc' is not an int"),
    ("train-set-epochs-zero", E, [*TRAIN, "--set", "epochs=0"], "epochs=0 is out of range"),
    ("train-set-epochs-bool", E, [*TRAIN, "--set", "epochs=true"], "epochs=True is not an int"),
    ("train-set-batch-zero", E, [*TRAIN, "--set", "batch_size=0"], "batch_size=0 is out of range"),
    ("train-set-batch-negative", E, [*TRAIN, "--set", "batch_size=-8"], "batch_size=-8 is out of range"),
    ("train-set-lr-nan-word", E, [*TRAIN, "--set", "lr=nan"], "lr='nan' is not a float"),
    ("train-set-lr-nan", E, [*TRAIN, "--set", "lr=.nan"], "lr=nan is not a finite number"),
    ("train-set-lr-inf", E, [*TRAIN, "--set", "lr=.inf"], "lr=inf is not a finite number"),
    ("train-set-lr-negative", E, [*TRAIN, "--set", "lr=-1"], "lr=-1 is out of range"),
    ("train-set-lr-zero", E, [*TRAIN, "--set", "lr=0"], "lr=0 is out of range"),
    ("train-set-weight-decay-negative", E, [*TRAIN, "--set", "weight_decay=-0.1"], "weight_decay=-0.1"),
    ("train-set-label-smoothing", E, [*TRAIN, "--set", "label_smoothing=2"], "label_smoothing=2 is out of range"),
    ("train-set-threads-zero", E, [*TRAIN, "--set", "threads=0"], "threads=0 is out of range"),
    ("train-set-seed-negative", E, [*TRAIN, "--set", "seed=-1"], "seed=-1 is out of range"),
    ("train-set-optimizer", E, [*TRAIN, "--set", "optimizer=adam"], "optimizer 'adam' is unknown"),
    ("train-set-unknown-key", E, [*TRAIN, "--set", "bogus=1"], "unknown keys ['bogus']"),
    ("train-set-name-parent", E, [*TRAIN, "--set", "name=../../x"], "not a plain folder name"),
    ("train-set-name-absolute", E, [*TRAIN, "--set", "name=/abs/path"], "not a plain folder name"),
    ("train-set-name-int", E, [*TRAIN, "--set", "name=123"], "name=123 is not a str"),
    ("train-set-model-unknown", E, [*TRAIN, "--set", "model=nosuch"], "model 'nosuch'"),
    ("train-set-model-lm", E, [*TRAIN, "--set", "model=openelm"], "not an image classifier"),
    ("train-set-dataset", E, [*TRAIN, "--set", "dataset=imagenet"], "dataset 'imagenet' is unknown"),
    ("train-set-model-args-int", E, [*TRAIN, "--set", "model_args=5"], "model_args=5 is not a dict"),
    ("train-set-model-arg-type", E, [*TRAIN, "--set", "model_args.widths=abc"], "widths='abc'"),
    ("train-set-model-arg-zero", E, [*TRAIN, "--set", "model_args.widths=[0]"], "do not give a working resnet"),
    ("train-set-model-arg-unknown", E, [*TRAIN, "--set", "model_args.depth=3"], "depth"),
    ("train-set-no-equals", E, [*TRAIN, "--set", "epochs"], "not key=value"),
    ("train-set-bad-yaml", E, [*TRAIN, "--set", "model_args.widths=[8"], "is not a YAML value"),
    ("train-recipe-unknown", E, ["train", "nosuch", *WS], "recipe nosuch not found"),
    ("train-recipe-folder", E, ["train", "{dir}", *WS], "is a folder"),
    ("train-recipe-name-parent", E, ["train", "{up}", *WS], "not a plain folder name"),
    ("train-recipe-name-absolute", E, ["train", "{abs}", *WS], "not a plain folder name"),
    ("train-recipe-not-mapping", E, ["train", "{list}", *WS], "is not a mapping"),
    ("train-recipe-bad-yaml", E, ["train", "{broken}", *WS], "is not valid YAML"),
    ("train-recipe-binary", E, ["train", "{bin}", *WS], "cannot be read as text"),
    ("train-recipe-field-type", E, ["train", "{typed}", *WS], "epochs='three' is not an int"),
    ("train-recipe-no-model", E, ["train", "{noname}", *WS], "model"),
    ("train-out-file", E, [*TRAIN, "--out", "{file}"], "is a file, not a folder"),
    ("train-out-under-file", E, [*TRAIN, "--out", "{file}/ckpt"], "cannot be created"),
    ("train-out-loop", E, [*TRAIN, "--out", "{loop}"], "symlink loop"),
    ("train-out-someone-elses-folder", E, [*TRAIN, "--out", "{full}"], "holds files but no checkpoint"),
    *_ws_rows("train", E, ["train", "digits_resnet"]),
    # --- export (edgezoo export FMT CHECKPOINT)
    ("export-format-unknown", E, ["export", "tflite", "{ckpt}", *WS], "unknown format 'tflite'"),
    *_export_rows("export", E, ["export", "onnx"]),
    ("export-card-task-int", E, ["export", "onnx", "{task5}"], "field 'task' is 5"),
    ("export-card-model-unknown", E, ["export", "onnx", "{nomodel}"], "unknown model 'nosuch'"),
    ("export-card-dataset-unknown", E, ["export", "onnx", "{dataset}"], "dataset 'imagenet' is unknown"),
    ("export-card-lm-not-an-lm", E, ["export", "onnx", "{lmcard}"], "is not a language model"),
    ("exporters-onnx-card-lm-not-an-lm", X, ["onnx", "{lmcard}"], "is not a language model"),
    ("export-card-corrupt", E, ["export", "onnx", "{badjson}"], "is corrupt"),
    ("export-ckpt-no-card", E, ["export", "onnx", "{nocard}"], "has no card.json"),
    ("export-compress-int4-block", E, ["export", "onnx", "{ckpt}", "-c", "int4:block=7"], "block"),
    ("export-compress-int4-block-negative", E, ["export", "onnx", "{ckpt}", "-c", "int4:block=-32"], "block"),
    ("export-compress-not-number", E, ["export", "onnx", "{ckpt}", "-c", "int4:block=x"], "is not a number"),
    ("export-compress-sparsity", E, ["export", "onnx", "{ckpt}", "-c", "prune:sparsity=2"], "sparsity"),
    ("export-compress-bad-option", E, ["export", "onnx", "{ckpt}", "-c", "int8:bits=3"], "bad option"),
    ("export-compress-wrong-format", E, ["export", "onnx", "{ckpt}", "-c", "palette4"], "not available for onnx"),
    ("export-out-loop", E, ["export", "onnx", "{ckpt}", "--out", "{loop}"], "symlink loop"),
    *_ws_rows("export", E, ["export", "onnx", "{ckpt}"]),
    # --- exporters FMT CHECKPOINT, every format
    *[row for fmt in ("onnx", "coreml", "mlx", "torch") for row in _export_rows(f"exporters-{fmt}", X, [fmt])],
    ("exporters-onnx-card-task-int", X, ["onnx", "{task5}"], "field 'task' is 5"),
    ("exporters-onnx-compress-int4-block", X, ["onnx", "{ckpt}", "-c", "int4:block=7"], "block"),
    ("exporters-onnx-compress-sparsity", X, ["onnx", "{ckpt}", "-c", "prune:sparsity=0"], "sparsity"),
    ("exporters-torch-compress-int8", X, ["torch", "{ckpt}", "-c", "int8"], "not available for torch"),
    ("exporters-unknown-format", X, ["tflite", "{ckpt}"], "No such command"),
    *_ws_rows("exporters-onnx", X, ["onnx", "{ckpt}"]),
    # --- profile (all fail before the store is opened or a child started)
    ("profile-threads-negative", E, [*PROFILE, "--threads", "-1"], "below 1"),
    ("profile-threads-zero", E, [*PROFILE, "--threads", "0"], "below 1"),
    ("profile-threads-text", E, [*PROFILE, "--threads", "many"], "valid integer"),
    ("profile-timeout-nan", E, [*PROFILE, "--timeout", "nan"], "not a finite number"),
    ("profile-timeout-inf", E, [*PROFILE, "--timeout", "inf"], "not a finite number"),
    ("profile-timeout-zero", E, [*PROFILE, "--timeout", "0"], "not a finite number > 0"),
    ("profile-timeout-negative", E, [*PROFILE, "--timeout", "-1"], "not a finite number > 0"),
    ("profile-timeout-text", E, [*PROFILE, "--timeout", "soon"], "valid number"),
    ("profile-path-missing", E, PROFILE, "does not exist"),
    ("profile-path-empty-folder", E, ["profile", "{dir}", *WS], "without manifest.json"),
    ("profile-path-unknown-file", E, ["profile", "{file}", *WS], "is not an artifact folder"),
    ("profile-path-checkpoint", E, ["profile", "{ckpt}", *WS], "without manifest.json"),
    ("profile-runtime-unknown", E, [*PROFILE, "--runtime", "tensorrt"], "unknown runtime 'tensorrt'"),
    ("profile-input-no-shape", E, [*PROFILE, "--input", "x"], "NAME=SHAPE:DTYPE"),
    ("profile-input-empty-shape", E, [*PROFILE, "--input", "x=:float32"], "NAME=SHAPE:DTYPE"),
    ("profile-input-no-name", E, [*PROFILE, "--input", "=1x64:float32"], "NAME=SHAPE:DTYPE"),
    ("profile-input-zero-dim", E, [*PROFILE, "--input", "x=1x0:float32"], "positive integer dims"),
    ("profile-input-negative-dim", E, [*PROFILE, "--input", "x=1x-3:float32"], "positive integer dims"),
    ("profile-input-text-dim", E, [*PROFILE, "--input", "x=1xn:float32"], "positive integer dims"),
    ("profile-input-dtype", E, [*PROFILE, "--input", "x=1x64:complex64"], "dtype 'complex64'"),
    ("profile-input-twice", E, [*PROFILE, "--input", "x=1x64", "--input", "x=1x8"], "given twice"),
    *_ws_rows("profile", E, ["profile", "{missing}.onnx"]),
    # --- results
    ("results-status-unknown", E, ["results", "--status", "bogus", *WS], "'bogus' is not one of"),
    ("results-status-empty", E, ["results", "--status", "", *WS], "is not one of"),
    ("results-unknown-option", E, ["results", "--format", "csv", *WS], "No such option"),
    *_ws_rows("results", E, ["results"]),
    # --- dashboard (all fail before Streamlit starts)
    ("dashboard-port-negative", E, ["dashboard", "--port", "-1", *WS], "below 1"),
    ("dashboard-port-zero", E, ["dashboard", "--port", "0", *WS], "below 1"),
    ("dashboard-port-too-big", E, ["dashboard", "--port", "70000", *WS], "above 65535"),
    ("dashboard-port-text", E, ["dashboard", "--port", "web", *WS], "valid integer"),
    ("dashboard-host-empty", E, ["dashboard", "--host", "", *WS], "not a host name"),
    ("dashboard-host-space", E, ["dashboard", "--host", "local host", *WS], "not a host name"),
    ("dashboard-port-in-use", E, ["dashboard", "--port", "{busy}", *WS], "cannot serve the dashboard"),
    *_ws_rows("dashboard", E, ["dashboard"]),
    # --- report (all fail before the store is read or the host measured)
    ("report-out-folder", E, ["report", "--out", "{dir}", *WS], "is a folder"),
    ("report-out-folder-with-suffix", E, ["report", "--out", "{root}/dir.html", *WS], "is a folder"),
    ("report-out-pdf", E, ["report", "--out", "{root}/r.pdf", *WS], "cannot tell the report format"),
    ("report-out-no-suffix", E, ["report", "--out", "{root}/report", *WS], "cannot tell the report format"),
    ("report-out-under-file", E, ["report", "--out", "{file}/r.html", *WS], "cannot be created"),
    ("report-out-loop", E, ["report", "--out", "{loop}", *WS], "symlink loop"),
    ("report-device-unknown", E, ["report", "--device", "nosuch", *WS], "unknown device 'nosuch'"),
    ("report-no-store", E, ["report", "-w", "{dir}"], "no results store"),
    *_ws_rows("report", E, ["report"]),
    # --- reproduce (all fail before the store is opened or a model trained)
    ("reproduce-paper-unknown", E, ["reproduce", "nosuchpaper", *WS], "no claim check for paper 'nosuchpaper'"),
    ("reproduce-seeds-text", E, ["reproduce", "lcs", "--seeds", "a,b", *WS], "not a comma-separated list"),
    ("reproduce-seeds-empty", E, ["reproduce", "lcs", "--seeds", "", *WS], "not a comma-separated list"),
    ("reproduce-seeds-hole", E, ["reproduce", "lcs", "--seeds", "1,,2", *WS], "not a comma-separated list"),
    ("reproduce-seeds-negative", E, ["reproduce", "lcs", "--seeds", "-1", *WS], "below 0"),
    ("reproduce-seeds-repeated", E, ["reproduce", "lcs", "--seeds", "1,1", *WS], "repeated"),
    ("reproduce-seeds-float", E, ["reproduce", "lcs", "--seeds", "0.5", *WS], "not a comma-separated list"),
    *_ws_rows("reproduce", E, ["reproduce", "lcs"]),
    # --- models
    ("models-unknown-option", E, ["models", "--json"], "No such option"),
    ("models-threads-option", E, ["models", "--threads", "2"], "No such option"),
    ("models-workspace-option", E, ["models", "-w", "{ws}"], "No such option"),
    ("edgezoo-unknown-command", E, ["nosuch"], "No such command"),
]


@pytest.fixture(autouse=True)
def _private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """This test's own temp dir, so the harness's `edgezoo-*` leftover check sees only what this test made."""
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setenv("TMPDIR", str(private))
    monkeypatch.setattr(tempfile, "tempdir", str(private))


@pytest.mark.parametrize("prog,argv,mention", [pytest.param(p, a, m, id=i) for i, p, a, m in CASES])
def test_bad_input_fails_cleanly(prog: str, argv: list[str], mention: str, sandbox, capsys) -> None:
    args = [a.format(**sandbox) for a in argv]
    before = sorted(q.relative_to(sandbox["root"]) for q in sandbox["root"].rglob("*"))
    assert_clean_failure(args, capsys, sandbox["ws"], mentions=mention, prog=prog)
    after = sorted(q.relative_to(sandbox["root"]) for q in sandbox["root"].rglob("*"))
    assert after == before, f"{args}: files appeared or vanished: {set(after) ^ set(before)}"
    assert not (sandbox["root"] / "escaped").exists(), "a recipe name wrote outside the workspace"


def test_every_command_has_rows() -> None:
    commands = ("run", "train", "export", "profile", "results", "dashboard", "report", "reproduce", "models",
                "exporters-onnx", "exporters-coreml", "exporters-mlx", "exporters-torch")
    counts = {c: sum(i.startswith(f"{c}-") for i, _, _, _ in CASES) for c in commands}
    assert min(counts.values()) >= 3, counts
    assert len({i for i, _, _, _ in CASES}) == len(CASES), "duplicate row ids"


def test_profile_foreign_onnx_with_declared_input(tmp_path: Path, capsys) -> None:
    """A foreign .onnx (not made by EdgeZoo) profiled with `--input`: an ok record with the given input shape."""
    import torch

    model_file = tmp_path / "linear.onnx"
    torch.manual_seed(0)
    torch.onnx.export(torch.nn.Linear(64, 3).eval(), (torch.randn(1, 64),), str(model_file), dynamo=True)
    ws = tmp_path / "ws"
    res = invoke(["profile", str(model_file), "--input", "x=1x64:float32", "--timeout", "120", "-w", str(ws),
                  "--json"], capsys)
    assert res.code == 0, res.out + res.err
    records = json.loads(invoke(["results", "--json", "-w", str(ws)], capsys).out)
    assert [r["status"] for r in records] == ["ok"]
    assert records[0]["input_shapes"] == [[1, 64]] and records[0]["artifact"]["foreign"]
