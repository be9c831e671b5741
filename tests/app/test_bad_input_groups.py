"""Bad input to `edgezoo sweep|lm|spin|specdec|demo`: every row fails cleanly through the real entry point (one
`error:` line naming the problem, no traceback, not the catch-all for bugs, store untouched, nothing left behind).

Rows use `{name}` placeholders for the fixture paths below; `mentions` are substrings the error line must hold."""

from __future__ import annotations

import dataclasses
import json
import socket
from pathlib import Path

import pytest
import torch

from models import checkpoint
from models.openelm import ModelArgs, OpenELM
from models.openelm_upstream import save_upstream
from models.registry import build
from tests.app.cli_harness import assert_clean_failure

LONG = "x" * 100  # longer than the tiny LM's 64-token context


@pytest.fixture(autouse=True, scope="module")
def _private_tmp(tmp_path_factory: pytest.TempPathFactory):
    """Temp dirs of this module's commands go to a private folder: another process's edgezoo-* temp dir in the
    shared /tmp must not count as left behind here."""
    import tempfile

    old = tempfile.tempdir
    tempfile.tempdir = str(tmp_path_factory.mktemp("tmp"))
    yield
    tempfile.tempdir = old


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random-init checkpoints of each kind (nothing trained), upstream folders with one fault each, a file,
    an empty folder, an LM artifact and an empty workspace."""
    from exporters.lm.artifact import export_lm

    root = tmp_path_factory.mktemp("bad-input")
    torch.manual_seed(0)
    p = {"root": root, "ws": root / "ws", "missing": root / "missing", "empty": root / "empty",
         "file": root / "file.txt"}
    p["empty"].mkdir()
    p["file"].write_text("not a folder")
    tiny = ModelArgs.tiny()
    p["lm"] = checkpoint.save(OpenELM(tiny), root / "lm", {"note": "random init"})
    p["wide"] = checkpoint.save(OpenELM(dataclasses.replace(tiny, vocab_size=512)), root / "wide",
                                {"tokenizer": "upstream (not bundled)"})
    p["resnet"] = checkpoint.save(build("resnet", dataclasses.asdict(build("resnet").args.tiny())), root / "resnet",
                                  {"dataset": "digits"})
    spin = build("spin_convmixer").args.tiny()
    p["spin"] = checkpoint.save(build("spin_convmixer", dataclasses.replace(spin, share=0)), root / "spin", {})
    p["spin_shared"] = checkpoint.save(build("spin_convmixer", spin), root / "spin_shared", {})
    lcs = build("lcs_cnn").args.tiny()
    p["lcs"] = checkpoint.save(build("lcs_cnn", dataclasses.replace(lcs, subspace="line")), root / "lcs", {})
    p["artifact"] = export_lm(p["lm"], "torch", "none", root / "artifact")
    p["noweights"] = root / "noweights"
    p["noweights"].mkdir()
    (p["noweights"] / "card.json").write_text((p["lm"] / "card.json").read_text())
    p["up"] = save_upstream(OpenELM(tiny), root / "up")
    p["taken"] = checkpoint.save(OpenELM(tiny), p["ws"] / "zoo" / "up", {})  # `lm import up` would replace it
    _upstream_faults(p, tiny)
    return p


def _upstream_faults(p: dict[str, Path], tiny: ModelArgs) -> None:
    from safetensors.torch import load_file, save_file

    root = p["root"]

    def variant(name: str, config: dict | None = None, drop: str | None = None, raw: str | None = None) -> None:
        folder = save_upstream(OpenELM(tiny), root / name)
        cfg = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(raw if raw is not None else json.dumps({**cfg, **(config or {})}))
        if drop:
            state = load_file(str(folder / "model.safetensors"))
            save_file({k: v for k, v in state.items() if k != drop}, str(folder / "model.safetensors"))

    variant("up_llama", {"model_type": "llama"})
    variant("up_wide", {"model_dim": 48})  # every block's tensors mis-sized
    variant("up_ffn", {"ffn_multipliers": [0.5, 8.0]})  # a few FFN tensors mis-sized
    variant("up_drop", drop="transformer.layers.1.attn.qkv_proj.weight")
    variant("up_json", raw="{not json")
    variant("up_zero", {"head_dim": 0})
    variant("up_list", raw="[1, 2]")
    variant("up_nokey", raw=json.dumps({"model_type": "openelm"}))
    variant("up_trunc")
    (root / "up_trunc" / "model.safetensors").write_bytes(b"\x00" * 64)
    (root / "garbage.yaml").write_bytes(b"\xff\xfe\x00binary")
    (root / "list.yaml").write_text("- a\n- b\n")


LM = ["lm", "train", "openelm_tiny", "-w", "{ws}"]
BENCH = ["specdec", "bench", "{lm}", "--gammas", "2", "--contexts", "16", "--tokens", "8", "--prompts", "1",
         "--kv-group", "8", "--residual", "8", "-w", "{ws}"]
SGEN = ["specdec", "generate", "{lm}", "--prompt", "def ", "--tokens", "8", "--kv-group", "8", "--residual", "8"]
LGEN = ["lm", "generate", "{lm}", "--prompt", "def ", "--tokens", "8"]
FUSE = ["spin", "fuse", "{spin}", "{root}/fused", "--share", "2", "--epochs", "0"]
SWEEP = ["sweep", "lcs", "{lcs}", "--alphas", "0,1", "-w", "{ws}"]


def _with(base: list[str], *pairs: str) -> list[str]:
    """`base` with the options in `pairs` (option, value, ...) set, replacing any value it had."""
    out = list(base)
    for opt, value in zip(pairs[::2], pairs[1::2]):
        if opt in out:
            del out[out.index(opt):out.index(opt) + 2]
        out += [opt, value]
    return out


CASES: list[tuple[str, list[str], str | tuple[str, ...]]] = [
    # --- sweep lcs
    ("sweep-missing", SWEEP[:2] + ["{missing}"], "does not exist"),
    ("sweep-file", ["sweep", "lcs", "{file}"], "is a file"),
    ("sweep-empty-dir", ["sweep", "lcs", "{empty}", "-w", "{ws}"], "card.json"),
    ("sweep-not-lcs", SWEEP[:2] + ["{resnet}", "-w", "{ws}"], "not an LCS"),
    ("sweep-alpha-high", _with(SWEEP, "--alphas", "0,1.5"), "[0, 1]"),
    ("sweep-alpha-negative", _with(SWEEP, "--alphas", "-0.1"), "[0, 1]"),
    ("sweep-alpha-nan", _with(SWEEP, "--alphas", "nan"), "[0, 1]"),
    ("sweep-alpha-inf", _with(SWEEP, "--alphas", "0,inf"), "[0, 1]"),
    ("sweep-alpha-text", _with(SWEEP, "--alphas", "a,b"), "comma-separated"),
    ("sweep-alpha-none", _with(SWEEP, "--alphas", ","), "--alphas"),
    ("sweep-threads-zero", _with(SWEEP, "--threads", "0"), "--threads"),
    ("sweep-threads-negative", _with(SWEEP, "--threads", "-1"), "--threads"),
    ("sweep-threads-text", _with(SWEEP, "--threads", "two"), "--threads"),
    ("sweep-threads-huge", _with(SWEEP, "--threads", "1000000"), "--threads"),
    ("sweep-format", _with(SWEEP, "--format", "tflite"), "tflite"),
    ("sweep-workspace-file", _with(SWEEP, "-w", "{file}"), "is a file"),
    # --- lm train (all fail before a step is taken)
    ("train-recipe-missing", ["lm", "train", "no_such_recipe", "-w", "{ws}"], "not found"),
    ("train-recipe-dir", ["lm", "train", "{empty}", "-w", "{ws}"], "is a folder"),
    ("train-recipe-binary", ["lm", "train", "{root}/garbage.yaml", "-w", "{ws}"], "garbage.yaml"),
    ("train-recipe-list", ["lm", "train", "{root}/list.yaml", "-w", "{ws}"], "not a mapping"),
    ("train-name-abs", LM + ["--set", "name=/some/path"], "not a plain folder name"),
    ("train-name-dots", LM + ["--set", "name=.."], "not a plain folder name"),
    ("train-steps-negative", LM + ["--set", "steps=-1"], "steps"),
    ("train-steps-text", LM + ["--set", "steps=many"], "steps"),
    ("train-steps-float", LM + ["--set", "steps=1e3"], "steps"),
    ("train-lr-nan", LM + ["--set", "lr=.nan"], "lr"),
    ("train-lr-inf", LM + ["--set", "lr=.inf"], "lr"),
    ("train-lr-zero", LM + ["--set", "lr=0"], "lr"),
    ("train-context-zero", LM + ["--set", "context=0"], "context"),
    ("train-context-huge", LM + ["--set", "context=10000000"], "context"),
    ("train-batch-zero", LM + ["--set", "batch_size=0"], "batch_size"),
    ("train-threads-zero", LM + ["--set", "threads=0"], "threads"),
    ("train-seed-negative", LM + ["--set", "seed=-1"], "seed"),
    ("train-unknown-key", LM + ["--set", "epochs=3"], "unknown keys"),
    ("train-not-key-value", LM + ["--set", "steps"], "key=value"),
    ("train-model-dim-zero", LM + ["--set", "model_args.model_dim=0"], "model_dim"),
    ("train-model-args-scalar", LM + ["--set", "model_args=3"], "model_args"),
    ("train-preset", LM + ["--set", "preset=huge"], "preset"),
    ("train-out-file", LM + ["-o", "{file}"], "is a file"),
    ("train-out-under-file", LM + ["-o", "{file}/ck"], "lies under the file"),
    ("train-workspace-file", ["lm", "train", "openelm_tiny", "-w", "{file}"], "is a file"),
    # --- lm import
    ("import-name-abs", ["lm", "import", "{up}", "--name", "{root}/outside", "-w", "{ws}"], "not a plain folder name"),
    ("import-name-dots", ["lm", "import", "{up}", "--name", "../escape", "-w", "{ws}"], "not a plain folder name"),
    ("import-name-empty", ["lm", "import", "{up}", "--name", "", "-w", "{ws}"], "not a plain folder name"),
    ("import-taken", ["lm", "import", "{up}", "-w", "{ws}"], ("already exists", "--force")),
    ("import-missing", ["lm", "import", "{missing}", "-w", "{ws}"], "does not exist"),
    ("import-file", ["lm", "import", "{file}", "-w", "{ws}"], "is a file"),
    ("import-empty-dir", ["lm", "import", "{empty}", "-w", "{ws}"], "no config.json"),
    ("import-model-type", ["lm", "import", "{root}/up_llama", "-w", "{ws}"], ("model_type 'llama'", "not 'openelm'")),
    ("import-size-mismatch", ["lm", "import", "{root}/up_wide", "-w", "{ws}"],
     ("size mismatches (20)", "transformer.layers.0.attn.out_proj.weight is 32x16 in the checkpoint, 48x16 in the "
      "model", "(+17 more)")),
    ("import-ffn-mismatch", ["lm", "import", "{root}/up_ffn", "-w", "{ws}"],
     ("size mismatches (", "transformer.layers.2.ffn.proj_1.weight is ")),
    ("import-missing-tensor", ["lm", "import", "{root}/up_drop", "-w", "{ws}"],
     ("missing tensors (1): transformer.layers.1.attn.qkv_proj.weight",)),
    ("import-bad-json", ["lm", "import", "{root}/up_json", "-w", "{ws}"], "not readable JSON"),
    ("import-json-list", ["lm", "import", "{root}/up_list", "-w", "{ws}"], "not a JSON object"),
    ("import-json-lacks-key", ["lm", "import", "{root}/up_nokey", "-w", "{ws}"], "lacks the key"),
    ("import-zero-size", ["lm", "import", "{root}/up_zero", "-w", "{ws}"], "head_dim=0"),
    ("import-truncated", ["lm", "import", "{root}/up_trunc", "-w", "{ws}"], "model.safetensors is not a readable"),
    ("import-workspace-file", ["lm", "import", "{up}", "-w", "{file}"], "is a file"),
    # --- lm export
    ("export-compress", ["lm", "export", "{lm}", "-c", "bogus", "-o", "{root}/e1"], "bogus"),
    ("export-format", ["lm", "export", "{lm}", "-f", "tflite", "-o", "{root}/e2"], "tflite"),
    ("export-classifier", ["lm", "export", "{resnet}", "-f", "torch", "-o", "{root}/e3"], "not a language model"),
    ("export-missing", ["lm", "export", "{missing}", "-f", "torch", "-o", "{root}/e4"], "does not exist"),
    ("export-ckpt-file", ["lm", "export", "{file}", "-f", "torch", "-o", "{root}/e5"], "is a file"),
    ("export-ckpt-empty-dir", ["lm", "export", "{empty}", "-f", "torch", "-o", "{root}/e6"], "card.json"),
    ("export-out-file", ["lm", "export", "{lm}", "-f", "torch", "-o", "{file}"], "not a folder"),
    ("export-workspace-file", ["lm", "export", "{lm}", "-f", "torch", "-w", "{file}"], "is a file"),
    ("export-default-missing", ["lm", "export", "{missing}", "-w", "{ws}"], "does not exist"),
    ("export-default-format", ["lm", "export", "{lm}", "-f", "tflite", "-w", "{ws}"], "tflite"),
    ("export-default-no-weights", ["lm", "export", "{noweights}", "-w", "{ws}"], "has no model.safetensors"),
    # --- lm profile (fails before the store is opened)
    ("profile-missing", ["lm", "profile", "{missing}", "-w", "{ws}"], "not a folder"),
    ("profile-file", ["lm", "profile", "{file}", "-w", "{ws}"], "not a folder"),
    ("profile-empty-dir", ["lm", "profile", "{empty}", "-w", "{ws}"], "lm_manifest.json"),
    ("profile-checkpoint", ["lm", "profile", "{lm}", "-w", "{ws}"], "lm_manifest.json"),
    ("profile-threads-zero", ["lm", "profile", "{artifact}", "--threads", "0", "-w", "{ws}"], "--threads"),
    ("profile-threads-negative", ["lm", "profile", "{artifact}", "-t", "-2", "-w", "{ws}"], "--threads"),
    ("profile-threads-text", ["lm", "profile", "{artifact}", "-t", "2.5", "-w", "{ws}"], "--threads"),
    ("profile-threads-huge", ["lm", "profile", "{artifact}", "-t", "1000000", "-w", "{ws}"], "--threads"),
    ("profile-runtime", ["lm", "profile", "{artifact}", "--runtime", "tensorrt", "-w", "{ws}"], "tensorrt"),
    ("profile-workspace-file", ["lm", "profile", "{artifact}", "-w", "{file}"], "is a file"),
    # --- lm run (all fail before training)
    ("run-format", ["lm", "run", "--formats", "torch,tflite", "-w", "{ws}"], "tflite"),
    ("run-compression", ["lm", "run", "--compressions", "int3", "-w", "{ws}"], "int3"),
    ("run-formats-empty", ["lm", "run", "--formats", "", "-w", "{ws}"], "format"),
    ("run-recipe-missing", ["lm", "run", "--recipe", "no_such_recipe", "--formats", "torch", "--compressions", "none",
                            "-w", "{ws}"], "not found"),
    ("run-workspace-file", ["lm", "run", "-w", "{file}"], "is a file"),
    # --- specdec bench (all fail before a prompt is decoded)
    ("bench-contexts-float", _with(BENCH, "--contexts", "1e7"), "comma-separated list of integers"),
    ("bench-contexts-beyond-model", _with(BENCH, "--contexts", "99999999"), ("context 99,999,999", "64")),
    ("bench-contexts-some-beyond", _with(BENCH, "--contexts", "16,65"), "context 65"),
    ("bench-contexts-zero", _with(BENCH, "--contexts", "0"), "contexts"),
    ("bench-contexts-negative", _with(BENCH, "--contexts", "-5"), "contexts"),
    ("bench-contexts-empty", _with(BENCH, "--contexts", ","), "contexts"),
    ("bench-gammas-zero", _with(BENCH, "--gammas", "0"), "gammas"),
    ("bench-gammas-negative", _with(BENCH, "--gammas", "2,-1"), "gammas"),
    ("bench-gammas-text", _with(BENCH, "--gammas", "two"), "--gammas"),
    ("bench-gammas-beyond-tokens", _with(BENCH, "--gammas", "100000000"), "gamma 100000000"),
    ("bench-tokens-zero", _with(BENCH, "--tokens", "0"), "--tokens"),
    ("bench-tokens-negative", _with(BENCH, "--tokens", "-1"), "--tokens"),
    ("bench-tokens-beyond-context", _with(BENCH, "--gammas", "2", "--tokens", "100000"), "context of 64"),
    ("bench-prompts-zero", _with(BENCH, "--prompts", "0"), "--prompts"),
    ("bench-prompts-huge", _with(BENCH, "--prompts", "1000000000"), "prompts"),
    ("bench-mode", _with(BENCH, "--modes", "greedy,beam"), "beam"),
    ("bench-threads-zero", _with(BENCH, "--threads", "0"), "--threads"),
    ("bench-threads-huge", _with(BENCH, "--threads", "1000000"), "--threads"),
    ("bench-kv-group-zero", _with(BENCH, "--kv-group", "0"), "--kv-group"),
    ("bench-kv-group-negative", _with(BENCH, "--kv-group", "-8"), "--kv-group"),
    ("bench-kv-group-odd", _with(BENCH, "--kv-group", "3", "--residual", "3"), "even group"),
    ("bench-residual-not-multiple", _with(BENCH, "--residual", "12"), "multiple of G"),
    ("bench-residual-zero", _with(BENCH, "--residual", "0"), "--residual"),
    ("bench-missing", ["specdec", "bench", "{missing}", "-w", "{ws}"], "does not exist"),
    ("bench-file", ["specdec", "bench", "{file}", "-w", "{ws}"], "is a file"),
    ("bench-classifier", ["specdec", "bench", "{resnet}", "-w", "{ws}"], "not a language model"),
    ("bench-wide-vocab", BENCH[:2] + ["{wide}", "--contexts", "16", "-w", "{ws}"], "byte tokenizer"),
    ("bench-workspace-file", _with(BENCH, "-w", "{file}"), "is a file"),
    # --- specdec generate (and GENERATE below)
    ("sgen-gamma-zero", _with(SGEN, "--gamma", "0"), "--gamma"),
    ("sgen-gamma-negative", _with(SGEN, "--gamma", "-3"), "--gamma"),
    ("sgen-tokens-plus-prompt", _with(SGEN, "--tokens", "61"), "at most 3 bytes"),
    ("sgen-threads-zero", _with(SGEN, "--threads", "0"), "--threads"),
    ("sgen-threads-huge", _with(SGEN, "--threads", "1000000"), "--threads"),
    ("sgen-kv-group-zero", _with(SGEN, "--kv-group", "0"), "--kv-group"),
    ("sgen-residual-not-multiple", _with(SGEN, "--residual", "12"), "multiple of G"),
    ("sgen-residual-zero", _with(SGEN, "--residual", "0"), "--residual"),
    # --- spin fuse (all fail before data is loaded)
    ("fuse-missing", ["spin", "fuse", "{missing}", "{root}/fused"], "does not exist"),
    ("fuse-source-file", ["spin", "fuse", "{file}", "{root}/fused"], "is a file"),
    ("fuse-source-empty-dir", ["spin", "fuse", "{empty}", "{root}/fused"], "card.json"),
    ("fuse-not-spin", ["spin", "fuse", "{resnet}", "{root}/fused"], "not a SPIN-capable"),
    ("fuse-lm", ["spin", "fuse", "{lm}", "{root}/fused"], "not a SPIN-capable"),
    ("fuse-shared-source", ["spin", "fuse", "{spin_shared}", "{root}/fused", "--share", "2"], "already shares"),
    ("fuse-share-zero", _with(FUSE, "--share", "0"), "--share"),
    ("fuse-share-negative", _with(FUSE, "--share", "-1"), "--share"),
    ("fuse-share-above-layers", _with(FUSE, "--share", "5"), ("--share 5", "1, 2, 4")),
    ("fuse-share-not-divisor", _with(FUSE, "--share", "3"), "--share 3"),
    ("fuse-share-text", _with(FUSE, "--share", "two"), "--share"),
    ("fuse-mapping", _with(FUSE, "--mapping", "diagonal"), "diagonal"),
    ("fuse-reduction", _with(FUSE, "--reduction", "max"), "max"),
    ("fuse-epochs-negative", _with(FUSE, "--epochs", "-1"), "--epochs"),
    ("fuse-lr-nan", _with(FUSE, "--lr", "nan"), "--lr"),
    ("fuse-lr-zero", _with(FUSE, "--lr", "0"), "--lr"),
    ("fuse-lr-negative", _with(FUSE, "--lr", "-0.1"), "--lr"),
    ("fuse-lr-inf", _with(FUSE, "--lr", "inf"), "--lr"),
    ("fuse-seed-negative", _with(FUSE, "--seed", "-1"), "--seed"),
    ("fuse-out-file", ["spin", "fuse", "{spin}", "{file}", "--share", "2"], "is a file"),
    ("fuse-out-under-file", ["spin", "fuse", "{spin}", "{file}/x", "--share", "2"], "lies under the file"),
    # --- demo specdec (fails before serving)
    ("demo-port-zero", ["demo", "specdec", "--port", "0", "-w", "{ws}"], "--port"),
    ("demo-port-high", ["demo", "specdec", "--port", "70000", "-w", "{ws}"], "--port"),
    ("demo-port-text", ["demo", "specdec", "--port", "http", "-w", "{ws}"], "--port"),
    ("demo-workspace-file", ["demo", "specdec", "-w", "{file}"], "is a file"),
]


# `lm generate` and `specdec generate` share their checkpoint, prompt and sampling checks: one row each for both
GENERATE: list[tuple[str, list[str], str | tuple[str, ...]]] = [
    ("missing", ["{missing}"], "does not exist"),
    ("file", ["{file}"], "is a file"),
    ("classifier", ["{resnet}"], "not a language model"),
    ("wide-vocab", ["{wide}"], ("byte tokenizer cannot encode", "512-token", "upstream (not bundled)")),
    ("tokens-zero", ["--tokens", "0"], "--tokens"),
    ("tokens-negative", ["--tokens", "-5"], "--tokens"),
    ("tokens-text", ["--tokens", "many"], "--tokens"),
    ("tokens-beyond-context", ["--tokens", "100000"], "context of 64"),
    ("temperature-negative", ["--temperature", "-1"], "--temperature"),
    ("temperature-nan", ["--temperature", "nan"], "--temperature"),
    ("temperature-inf", ["--temperature", "inf"], "--temperature"),
    ("temperature-tiny", ["--temperature", "1e-300"], "temperature"),
    ("top-p-zero", ["--top-p", "0"], "--top-p"),
    ("top-p-high", ["--top-p", "1.01"], "--top-p"),
    ("top-p-nan", ["--top-p", "nan"], "--top-p"),
    ("top-k-negative", ["--top-k", "-1"], "--top-k"),
    ("seed-negative", ["--seed", "-1"], "--seed"),
    ("seed-huge", ["--seed", str(2**64)], "--seed"),
    ("prompt-long", ["--prompt", LONG], "context of 64"),
    ("prompt-plus-tokens", ["--prompt", "x" * 40, "--tokens", "40"], "at most 24 bytes"),
    ("prompt-empty", ["--prompt", ""], "empty"),
    ("prompt-surrogate", ["--prompt", "a\ud800"], "UTF-8"),
]
for _cmd, _base in (("lgen", LGEN), ("sgen", SGEN)):
    CASES += [(f"{_cmd}-{i}", _base[:2] + extra + _base[3:] if extra[0].startswith("{") else _with(_base, *extra), m)
              for i, extra, m in GENERATE]


@pytest.mark.parametrize("argv,mentions", [pytest.param(a, m, id=i) for i, a, m in CASES])
def test_bad_input_fails_cleanly(argv: list[str], mentions, paths, capsys) -> None:
    args = [a.format(**{k: str(v) for k, v in paths.items()}) for a in argv]
    first, *more = (mentions,) if isinstance(mentions, str) else mentions
    res = assert_clean_failure(args, capsys, paths["ws"], mentions=first)
    line = next(x for x in res.err.splitlines() if x.startswith("error:"))
    assert all(m in line for m in more), f"{args}: {more} not all in\n{line}"
    assert not (paths["root"] / "outside").exists(), "a zoo name wrote outside the workspace"
    assert not (paths["root"] / "fused").exists() and not (paths["ws"] / "results.db").exists()
    assert sorted(p.name for p in (paths["ws"] / "zoo").iterdir()) == ["up"]


def test_every_command_has_rows() -> None:
    """Each command of the groups is covered by several rows (the counts are the report's)."""
    prefixes = ("sweep", "train", "import", "export", "profile", "run", "lgen", "bench", "sgen", "fuse", "demo")
    counts = {p: sum(i.startswith(p + "-") for i, _, _ in CASES) for p in prefixes}
    assert min(counts.values()) >= 4, counts
    assert len({i for i, _, _ in CASES}) == len(CASES)


def test_demo_port_in_use_is_one_line(paths, capsys) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert_clean_failure(["demo", "specdec", "--port", str(port), "-w", str(paths["ws"])], capsys, paths["ws"],
                             mentions=f"cannot serve on 127.0.0.1:{port}")
