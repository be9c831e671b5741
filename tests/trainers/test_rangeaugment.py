"""RangeAugment (card 09): the augmentor and L_NA against the card's numbers, export without the augmentor (plain
logits, never None or a dict), the trainer's history and checkpoint, the dashboard's figures, bad recipe values
through the recipe loader and the CLI, the verdict table and a quick claim run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from models import checkpoint
from models.errors import RecipeError
from models.layers.range_augment import (RangeAugmentor, cosine_curriculum, mse_to_psnr, na_loss, per_sample_mse,
                                         psnr_to_mse)
from models.registry import build, example_inputs, exportable
from tests.app.cli_harness import assert_clean_failure
from trainers.claims import seed_summary
from trainers.papers import get, recipe_trainer
from trainers.rangeaugment import claim
from trainers.rangeaugment.recipe import RangeAugmentRecipe, recipe_from_dict


def test_initial_ranges_are_the_cards() -> None:
    r = RangeAugmentor().ranges()  # constructor values are logits: the real ranges differ (pitfall 2)
    assert r["brightness_lo"] == pytest.approx(0.598, abs=1e-3) and r["brightness_hi"] == pytest.approx(8.38, abs=0.01)
    assert r["contrast_lo"] == pytest.approx(0.598, abs=1e-3) and r["contrast_hi"] == pytest.approx(8.38, abs=0.01)
    assert r["noise_lo"] == pytest.approx(2.5e-5, rel=1e-3) and r["noise_hi"] == pytest.approx(0.525, abs=1e-3)


def test_augmentor_trains_only_and_clips() -> None:
    aug = RangeAugmentor()
    aug.generator = torch.Generator().manual_seed(0)
    x = torch.rand(64, 1, 16, 16)
    assert torch.equal(aug.eval()(x), x)
    out = aug.train()(x)
    assert out.min() >= 0 and out.max() <= 1
    touched = (out != x).flatten(1).any(1).float().mean().item()
    assert 0.75 <= touched <= 0.95  # each of 3 operations on a half: 7/8 touched
    per_sample_mse(x, out).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in aug.parameters())


def test_psnr_mse_curriculum_and_loss_match_the_card() -> None:
    for psnr, mse in ((40, 6.50), (20, 650.25), (10, 6502.5), (5, 20563)):
        assert psnr_to_mse(psnr) == pytest.approx(mse, rel=1e-3)
        assert mse_to_psnr(psnr_to_mse(psnr)) == pytest.approx(psnr)
    assert mse_to_psnr(0.0) == math.inf
    c = cosine_curriculum(40, 20, 100)
    assert len(c) == 101 and c[0] == pytest.approx(6.50, rel=1e-3)
    assert c[-1] < psnr_to_mse(20) * 1.001 and bool((c[1:] >= c[:-1]).all())
    mse = torch.tensor([100.0, 1000.0])
    assert na_loss(mse, 650.25).item() == pytest.approx(100 / 65025 * (550.25 + 349.75 - 1.0) / 2, rel=1e-4)


def test_exportable_strips_the_augmentor() -> None:
    from exporters.artifact import plain_logits

    model = build("range_augment_cnn", {"channels": [8, 16, 16]})
    assert any("neural_augmentor" in k for k in model.state_dict())
    plain = exportable(model)
    assert not any("neural_augmentor" in k for k in plain.state_dict())
    x = example_inputs(plain, 2)
    out = plain_logits(torch.export.export(plain, x).module()(*x), "range_augment_cnn")
    assert out.shape == (2, 10) and torch.allclose(out, model.eval()(*x))


class UpstreamStyle(torch.nn.Module):
    """corenet's eval output for a model built with the augmentor: a dict holding None."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net, self.args = net, net.args

    def forward(self, x: torch.Tensor) -> dict:
        return {"augmented_tensor": None, "logits": self.net(x)}


@pytest.mark.parametrize("output", ["dict", "None"])
def test_export_fails_loudly_on_a_dict_or_none(output: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from exporters.artifact import export_checkpoint
    from models.errors import ConversionError
    from models.range_augment_cnn import RangeAugmentCNN

    ckpt = checkpoint.save(build("range_augment_cnn", {"channels": [8, 16, 16]}), tmp_path / "ck",
                           {"dataset": "digits16"})
    bad = UpstreamStyle if output == "dict" else (lambda net: type("NoneOut", (UpstreamStyle,), {
        "forward": lambda self, x: None})(net))
    monkeypatch.setattr(RangeAugmentCNN, "exportable", lambda self: bad(self.backbone).eval())
    with pytest.raises(ConversionError, match=f"returns {output if output == 'dict' else 'NoneType'}"):
        export_checkpoint(ckpt, "onnx", "none", workspace=tmp_path / "ws")
    assert not list((tmp_path / "ws").rglob("model.onnx"))


@pytest.mark.slow
def test_onnx_export_outputs_plain_logits(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    from exporters.artifact import export_checkpoint

    model = build("range_augment_cnn", {"channels": [8, 16, 16]}).eval()
    ckpt = checkpoint.save(model, tmp_path / "ck", {"dataset": "digits16"})
    art = export_checkpoint(ckpt, "onnx", "none", workspace=tmp_path / "ws")
    sess = ort.InferenceSession(str(art.path / art.manifest["model_file"]))
    x = np.random.default_rng(0).random((1, 1, 16, 16), dtype=np.float32)
    outs = sess.run(None, {sess.get_inputs()[0].name: x})
    assert len(outs) == 1 and all(o is not None for o in outs)
    assert outs[0].shape == (1, 10)
    np.testing.assert_allclose(outs[0], model(torch.from_numpy(x)).detach().numpy(), atol=1e-4)


def test_train_writes_history_and_the_dashboard_plots_it(tmp_path: Path) -> None:
    from trainers.rangeaugment import dashboard, recipe

    metrics = recipe.train(recipe_from_dict({"epochs": 2, "channels": [8, 16, 16], "batch_size": 128}),
                           tmp_path / "zoo" / "ra")
    model, card = checkpoint.load(tmp_path / "zoo" / "ra")
    assert card["dataset"] == "digits16" and len(card["history"]) == 2
    row = card["history"][-1]
    assert {"measured_psnr", "target_psnr", "brightness_lo", "brightness_hi", "noise_hi"} <= set(row)
    assert 0 <= metrics["test_accuracy"] <= 1 and "corrupted_accuracy" in metrics and metrics["psnr_gap"] >= 0
    art = tmp_path / "artifacts" / "a"
    art.mkdir(parents=True)
    (art / "manifest.json").write_text(json.dumps({"checkpoint": str(tmp_path / "zoo" / "ra")}))
    import pandas as pd

    found = dashboard.checkpoints(pd.DataFrame({"artifact.path": [str(art), str(tmp_path / "gone")]}))
    assert list(found) == [str(tmp_path / "zoo" / "ra")]
    fig = dashboard.psnr_figure(found[str(tmp_path / "zoo" / "ra")]["history"])
    assert [t.name for t in fig.data] == ["measured (batch median)", "target (curriculum)"]
    assert list(fig.data[1].y) == [h["target_psnr"] for h in card["history"]]
    assert dashboard.ranges_figure(card["history"], "noise", "std").layout.yaxis.type == "log"
    assert dashboard.accuracy_table(found)["corrupted mean"].iloc[0] == metrics["corrupted_accuracy"]


BAD = [
    ("target_psnr=0", "target_psnr"), ("target_psnr=-5", "target_psnr"), ("target_psnr=.nan", "target_psnr"),
    ("target_psnr=loud", "target_psnr"), ("target_psnr=500", "target_psnr"), ("start_psnr=0", "start_psnr"),
    ("target_psnr=45", "above start_psnr"), ("alpha=-1", "alpha"), ("curriculum=0", "curriculum"),
    ("curriculum=1.5", "curriculum"), ("aug_lr_multiplier=-1", "aug_lr_multiplier"), ("augment=[blur]", "augment"),
    ("augment=[noise,noise]", "augment"), ("channels=[0]", "channels"), ("norm=layer", "norm"),
    ("epochs=0", "epochs"), ("batch_size=0", "batch_size"), ("lr=0", "lr"), ("threads=0", "threads"),
    ("psnr=20", "unknown keys"),
]


@pytest.mark.parametrize("override,mentions", BAD)
def test_bad_recipe_values_through_the_loader(override: str, mentions: str) -> None:
    path, trainer, key = recipe_trainer("rangeaugment")
    assert key == "rangeaugment"
    with pytest.raises(RecipeError) as e:
        trainer(path, Path("unused"), [override], check_only=True)
    assert mentions in e.value.problem and e.value.fix and "\n" not in str(e.value)


@pytest.mark.parametrize("override,mentions", [("target_psnr=0", "target_psnr"), ("alpha=-1", "alpha"),
                                               ("augment=[blur]", "augment")])
def test_bad_recipe_values_through_the_cli(override: str, mentions: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    ws = tmp_path / "ws"
    assert_clean_failure(["train", "rangeaugment", "--set", override, "-w", str(ws)], capsys, ws, mentions=mentions)
    assert not (ws / "zoo" / "rangeaugment").exists()


def test_bundled_recipes_are_valid() -> None:
    paper = get("rangeaugment")
    for d in paper.deployables:
        r = recipe_from_dict(__import__("yaml").safe_load(paper.recipe_path(d.recipe).read_text()))
        assert isinstance(r, RangeAugmentRecipe) and r.epochs >= 10


def _measured(gap: list[float], width_b: list[float], width_c: list[float], corr_b: list[float],
              corr_a: list[float], clean_b: list[float], clean_a: list[float]) -> dict:
    return {"B_rangeaugment/psnr_gap": seed_summary(gap), "B_rangeaugment/brightness_width": seed_summary(width_b),
            "C_no_na/brightness_width": seed_summary(width_c),
            "B_rangeaugment/corrupted_accuracy": seed_summary(corr_b),
            "A_none/corrupted_accuracy": seed_summary(corr_a), "B_rangeaugment/test_accuracy": seed_summary(clean_b),
            "A_none/test_accuracy": seed_summary(clean_a)}


GOOD = dict(gap=[1.0, 1.5], width_b=[0.5, 0.6], width_c=[0.2, 0.3], corr_b=[0.6, 0.7], corr_a=[0.3, 0.4],
            clean_b=[0.985, 0.99], clean_a=[0.99, 0.99])
VERDICTS = [
    ({}, "pass"),
    ({"gap": [2.5, 3.0]}, "fail"),                      # 1: PSNR off target
    ({"width_c": [0.7, 0.8]}, "fail"),                  # 2: ranges wider without L_NA
    ({"corr_b": [0.3, 0.4]}, "fail"),                   # 3: no robustness gain (a tie is not a win)
    ({"clean_b": [0.97, 0.975]}, "fail"),               # 3: clean accuracy more than 1 point down
    ({k: v[:1] for k, v in GOOD.items()}, "inconclusive"),  # one seed: no spread
]


@pytest.mark.parametrize("change,expected", VERDICTS)
def test_verdict_table(change: dict, expected: str) -> None:
    outcome, reason = claim.verdict(_measured(**{**GOOD, **change}))
    assert outcome == expected and "brightness width" in reason


def test_quick_claim_is_labelled() -> None:
    result = claim.reproduce(quick=True)
    assert result.quick and result.verdict.endswith("(quick)") and result.seeds == [0]
    assert {"A_none/test_accuracy", "B_rangeaugment/psnr_gap", "C_no_na/brightness_width"} <= set(result.measured)
    assert not any(k.startswith("sweep_") for k in result.measured)


def _papers_section(ckpt_card: str, artifact: str) -> None:
    import pandas as pd

    from trainers.rangeaugment.dashboard import section

    section(pd.DataFrame({"artifact.path": [artifact]}) if artifact else pd.DataFrame())


@pytest.mark.parametrize("with_records", [True, False])
def test_dashboard_section_renders(with_records: bool, tmp_path: Path) -> None:
    """The section as the Papers page calls it (a DataFrame of the paper's records): charts for a trained
    checkpoint found through an artifact manifest; a hint and no chart without records."""
    from streamlit.testing.v1 import AppTest

    from tests.app.test_dashboard_papers import values

    ckpt = tmp_path / "zoo" / "ra"
    history = [{"epoch": e, "train_loss": 1.0, "measured_psnr": 30.0 - e, "target_psnr": 40.0 - 5 * e,
                **{f"{op}_{end}": v for op in ("brightness", "contrast", "noise")
                   for end, v in (("lo", 0.5), ("hi", 1.5))}} for e in range(3)]
    ckpt.mkdir(parents=True)
    (ckpt / "card.json").write_text(json.dumps({"args": {"augment": ["noise"]}, "recipe": {"target_psnr": 20},
                                                "history": history, "metrics": {"test_accuracy": 0.9}}))
    art = tmp_path / "artifacts" / "onnx-none"
    art.mkdir(parents=True)
    (art / "manifest.json").write_text(json.dumps({"checkpoint": str(ckpt)}))
    at = AppTest.from_function(_papers_section, args=(str(ckpt), str(art) if with_records else ""),
                               default_timeout=60).run()
    assert not at.exception
    charts = at.get("plotly_chart")
    if with_records:
        assert len(charts) == 4 and not at.info  # PSNR vs target + three ranges
        spec = json.loads(charts[0].proto.spec)
        assert [values(t["y"]) for t in spec["data"]] == [[30.0, 29.0, 28.0], [40.0, 35.0, 30.0]]
    else:
        assert not charts and "edgezoo run --papers rangeaugment" in at.info[0].value
