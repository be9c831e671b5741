import numpy as np
import pytest

from exporters.artifact import export_checkpoint
from exporters.compression.spec import parse_spec
from models import checkpoint
from models.errors import CompressionSpecError
from trainers.data import load_dataset
from trainers.lcs.recipe import fit, recipe_from_dict


@pytest.fixture(scope="module")
def lcs_ckpt(tmp_path_factory):
    model = fit(recipe_from_dict({"arm": "lcs_l", "epochs": 6, "lr": 0.005, "channels": [8, 16, 16]}), load_dataset("digits"))
    d = tmp_path_factory.mktemp("lcs") / "ck"
    checkpoint.save(model, d, {"dataset": "digits"})
    return d


def test_spec():
    s = parse_spec("lcs:alpha=0.7", "onnx")
    assert s.method == "lcs" and s.alpha == 0.7 and s.name == "lcs-a0.70"
    with pytest.raises(CompressionSpecError):
        parse_spec("lcs:alpha=1.5")


def _accuracy(art, fmt):
    data = np.load(art.path / "eval.npz")
    if fmt == "onnx":
        import onnxruntime as ort
        sess = ort.InferenceSession(str(art.model_file), providers=["CPUExecutionProvider"])
        out = sess.run(None, {sess.get_inputs()[0].name: data["x"]})[0]
    else:
        import mlx.core as mx
        from exporters.mlx import run_function
        fn = mx.import_function(str(art.model_file))
        out = run_function(fn, data["x"], art.manifest["export_details"]["dynamic_batch"])
    return float((np.asarray(out).argmax(1) == data["y"]).mean())


@pytest.mark.parametrize("fmt", ["onnx", "mlx"])
def test_export_across_alpha(lcs_ckpt, tmp_path, fmt):
    rows = []
    for alpha in (0.025, 0.5, 1.0):
        art = export_checkpoint(lcs_ckpt, fmt, f"lcs:alpha={alpha}", workspace=tmp_path)
        assert art.manifest["verification"]["ok"] and art.manifest["compression_name"] == {0.025: "lcs-a0.025", 0.5: "lcs-a0.50", 1.0: "lcs-a1.00"}[alpha]
        rows.append((art.manifest["sparsity"], _accuracy(art, fmt)))
    sparsities = [s for s, _ in rows]
    assert sparsities[0] > 0.9 and sparsities[1] > 0.4 and sparsities[2] == 0.0
    assert sparsities == sorted(sparsities, reverse=True)
    assert rows[2][1] > 0.3


def test_plain_checkpoint_rejected(tmp_path):
    from models.registry import build
    checkpoint.save(build("lcs_cnn", {"channels": [8, 16, 16]}), tmp_path / "ck", {"dataset": "digits"})
    with pytest.raises(CompressionSpecError):
        export_checkpoint(tmp_path / "ck", "onnx", "lcs:alpha=0.5", workspace=tmp_path)


def test_coreml_stores_an_lcs_point_sparse(lcs_ckpt, tmp_path):
    """Core ML keeps the baked mask as sparse weights, so the file shrinks as alpha moves to the sparse end."""
    arts = {a: export_checkpoint(lcs_ckpt, "coreml", f"lcs:alpha={a}", out_dir=tmp_path / str(a)) for a in (0.025, 1.0)}
    assert all(art.manifest["verification"]["ok"] for art in arts.values())
    assert arts[0.025].manifest["size_bytes"] < 0.7 * arts[1.0].manifest["size_bytes"]  # tiny model: headers stay
    assert arts[0.025].manifest["export_details"]["compressed_ops"] > 0
