"""ByteFormer (card 06): masks that make a file's logits independent of its batch-mates (condition 4) in torch and
in the exported ONNX graph, the upstream-compatible flag that breaks it, byte transforms, recipe checks, exports
with (int32 tokens, mask) inputs, and the quick claim."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from models import checkpoint
from models.byteformer import ByteFormer, ModelArgs, reduced_length, shift_groups
from models.errors import RecipeError
from trainers.byteformer.claim import batch_dependence
from trainers.byteformer.data import encode, model_inputs, pad, to_uint8, transform, trim
from trainers.byteformer.recipe import recipe_from_dict

ARGS = dict(dim=16, heads=2, depth=2, ffn_dim=32, kernel=8, window=16, merges=(True, False), max_tokens=160,
            max_bytes=640)


@pytest.fixture(scope="module")
def jpeg_files() -> np.ndarray:
    """64 held-out digits as JPEG q60 files, padded with -1 (lengths differ: ~460-530 bytes)."""
    from trainers.data import load_digits32

    return pad([encode(im, "jpeg") for im in to_uint8(load_digits32().test.x[:64])])


def tiny(upstream: bool = False) -> ByteFormer:
    torch.manual_seed(0)
    return ByteFormer(ModelArgs(**ARGS, upstream_compat=upstream)).eval()


def test_masks_make_jpeg_logits_independent_of_batch(jpeg_files) -> None:
    lengths = (jpeg_files >= 0).sum(1)
    assert lengths.min() < lengths.max()  # variable length: padding differs between batch 1 and 64
    diff = batch_dependence(tiny(), jpeg_files)
    assert diff["masked"] <= 1e-5 and diff["upstream_compat"] > 1e-3, diff


def test_shift_mask_keeps_wrapped_tokens_apart() -> None:
    g = shift_groups(8, 4, 2)[:, 0]              # rolled by 2: positions 6, 7 of window 1 are the wrapped ones
    assert torch.equal(g[0], torch.ones(4, 4))
    assert g[1, 3, 2] == 1 and g[1, 3, 1] == 0 and g[1, 0, 3] == 0
    assert reduced_length(1024, 4) == 511 and reduced_length(1024, 16) == 127


def test_exportable_keeps_only_reachable_positions() -> None:
    torch.manual_seed(0)
    model = ByteFormer(ModelArgs(**{**ARGS, "max_tokens": 400})).eval()   # more rows than 640 bytes reach
    small = model.exportable()
    assert small.pos_embed.shape[0] == reduced_length(640, 8) == 159 and model.pos_embed.shape[0] == 400
    with torch.no_grad():
        assert torch.allclose(model(*model.example_inputs(2)), small(*model.example_inputs(2)), atol=1e-6)


def test_token_valid_only_when_its_window_is_real() -> None:
    model = tiny()
    mask = torch.zeros(1, 40)
    mask[0, :21] = 1.0                           # kernel 8, stride 4: windows [0, 8) ... [12, 20) are all real
    assert model.reduce_mask(mask).tolist() == [[1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]]


def test_inputs_never_edited_and_padding_value_irrelevant(jpeg_files) -> None:
    model = tiny()
    tokens, mask = (torch.from_numpy(a) for a in model_inputs(jpeg_files[:4], 640))
    before = tokens.clone()
    noisy = torch.where(mask > 0, tokens, torch.randint(0, 256, tokens.shape, dtype=torch.int32))
    with torch.no_grad():
        assert torch.allclose(model(tokens, mask), model(noisy, mask), atol=1e-6)
        assert torch.allclose(model(tokens, mask), model(torch.from_numpy(jpeg_files[:4])), atol=1e-5)
    assert torch.equal(tokens, before)


def test_byte_transforms() -> None:
    x = pad([np.arange(10, dtype=np.uint8).tobytes(), bytes([5, 6, 7])])
    perm = transform(x, "permute", 0)
    assert (perm[0] >= 0).all() and len(set(perm[0].tolist())) == 10 and (perm[1, 3:] == -1).all()
    assert np.array_equal(perm[1, :3], perm[0, 5:8])  # one table for every sample
    shuf = transform(x, "shuffle", 0)
    assert sorted(shuf[1, :3].tolist()) == [5, 6, 7] and sorted(shuf[0].tolist()) == list(range(10))
    assert transform(x, "reverse", 0)[1, :3].tolist() == [7, 6, 5]
    raw = pad([bytes(range(100)), bytes(range(100, 200))])
    kept = transform(raw, "keep", 0, keep=0.25)
    assert kept.shape == (2, 25) and np.array_equal(kept[1] - kept[0], np.full(25, 100))  # same positions
    assert trim(x).shape == (2, 10)


def test_recipe_values_checked() -> None:
    for bad, words in (({"epochs": 0}, "epochs"), ({"encoding": "gif"}, "encoding"), ({"keep": 2.0}, "keep"),
                       ({"transform": "keep"}, "raw"), ({"model_args": {"dim": 7}}, "divisible"),
                       ({"model_args": {"max_bytes": 100000}}, "max_tokens"), ({"nope": 1}, "unknown")):
        with pytest.raises(RecipeError, match=words):
            recipe_from_dict(bad)


@pytest.fixture(scope="module")
def onnx_artifact(tmp_path_factory, jpeg_files):
    """A tiny (untrained) ByteFormer checkpoint on JPEG bytes exported to ONNX through the zoo path."""
    from exporters.artifact import export_checkpoint

    root = tmp_path_factory.mktemp("byteformer")
    recipe = recipe_from_dict({"name": "bf", "model_args": dict(ARGS, merges=list(ARGS["merges"]))})
    checkpoint.save(tiny(), root / "ck", {"recipe": dataclasses.asdict(recipe), "dataset": "digits32-jpeg-none",
                                          "eval_inputs": "trainers.byteformer.data:eval_inputs"})
    return export_checkpoint(root / "ck", "onnx", "none", out_dir=root / "onnx")


def test_onnx_export_takes_tokens_and_mask_and_keeps_masks(onnx_artifact, jpeg_files) -> None:
    """Card condition 4 on the exported graph: 64 JPEG files in one batch at the fixed length give the logits
    torch gives each file alone at its own length."""
    import onnxruntime as ort

    m = onnx_artifact.manifest
    assert [(i["name"], i["dtype"], i["shape"]) for i in m["inputs"]] == [
        ("tokens", "int32", [None, 640]), ("mask", "float32", [None, 640])]
    assert m["verification"]["ok"] and m["verification"]["n"] == 297
    sess = ort.InferenceSession(str(onnx_artifact.model_file), providers=["CPUExecutionProvider"])
    tokens, mask = model_inputs(jpeg_files, 640)
    batched = sess.run(None, {"tokens": tokens, "mask": mask})[0]
    model = tiny()
    with torch.no_grad():
        alone = torch.cat([model(torch.from_numpy(trim(jpeg_files[i:i + 1]))) for i in range(64)]).numpy()
    assert np.abs(batched - alone).max() <= 1e-5


@pytest.mark.slow
def test_onnx_upstream_flag_graph_depends_on_padding(tmp_path, jpeg_files) -> None:
    from exporters.artifact import declared_io
    from exporters.compression import parse_spec
    from exporters.onnx import export
    import onnxruntime as ort

    model = tiny(upstream=True)
    inputs = model.example_inputs(1)
    export(model, inputs, tmp_path, parse_spec("none", "onnx"), io=declared_io(model, inputs))
    sess = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    tokens, mask = model_inputs(jpeg_files, 640)
    batched = sess.run(None, {"tokens": tokens, "mask": mask})[0]
    with torch.no_grad():
        alone = torch.cat([model(torch.from_numpy(trim(jpeg_files[i:i + 1]))) for i in range(64)]).numpy()
    assert np.abs(batched - alone).max() > 1e-3


@pytest.mark.slow
def test_mlx_and_coreml_exports(onnx_artifact, tmp_path) -> None:
    """MLX runs the new ops (embedding, conv1d, slice, amax, ...) and matches torch; Core ML takes int32 tokens."""
    from exporters.artifact import export_checkpoint

    ck = Path(onnx_artifact.manifest["checkpoint"])
    mlx = export_checkpoint(ck, "mlx", "none", out_dir=tmp_path / "mlx").manifest
    assert mlx["verification"]["ok"] and mlx["verification"]["max_abs_err"] < 1e-4
    assert {"aten.embedding.default", "aten.conv1d.default"} <= set(mlx["export_details"]["translated_ops"])
    core = export_checkpoint(ck, "coreml", "none", out_dir=tmp_path / "coreml").manifest
    assert core["verification"]["ok"]
    assert [i["dtype"] for i in core["verification"]["inputs"]] == ["int32", "float32"]


@pytest.mark.slow
def test_quick_claim_runs_and_is_labelled() -> None:
    from trainers.claims import reproduce

    result = reproduce("byteformer", quick=True)
    assert result.verdict.endswith("(quick)") and result.quick
    assert {"raw", "png", "tiff", "jpeg", "raw_permute", "raw_shuffle", "raw_reverse", "pixel_vit"} <= set(
        result.measured)
    assert result.measured["jpeg_logit_diff_masked"]["mean"] <= 1e-5


def test_classify_bytes_command_runs_the_artifact(onnx_artifact, tmp_path, capsys) -> None:
    """`edgezoo classify-bytes` feeds a JPEG file's bytes to the exported graph: the class torch gives the file."""
    from tests.app.cli_harness import invoke
    from trainers.data import load_digits32

    data = encode(to_uint8(load_digits32().test.x[:1])[0], "jpeg")
    (tmp_path / "d.jpg").write_bytes(data)
    res = invoke(["classify-bytes", str(onnx_artifact.path), str(tmp_path / "d.jpg"), "--json"], capsys)
    with torch.no_grad():
        want = int(tiny()(torch.from_numpy(pad([data]))).argmax())
    row = __import__("json").loads(res.out.strip().splitlines()[-1])
    assert res.code == 0 and row["class"] == want and row["bytes"] == len(data)
