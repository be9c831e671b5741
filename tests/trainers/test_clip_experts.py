"""CLIP meets model-zoo experts (card 08): the expert's label noise, labels that follow the augmented view, the
confidence-ignored pseudo-labels, the larger-is-nearer depth proxy, the scale- and shift-invariant depth loss
(pitfall 3), mIoU, the deployable's constant prompt matrix, the verdict table, the dashboard's figures and a
quick claim run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.errors import RecipeError
from trainers.clip_experts import expert as E
from trainers.clip_experts import student as S
from trainers.clip_experts.recipe import recipe_from_dict, zero_shot_model


def _two_objects() -> np.ndarray:
    m = np.zeros((1, 8, 8), np.int64)
    m[0, :3, :3] = 1       # a circle region
    m[0, 5:, 5:] = 2       # a square region
    return m


def test_label_noise_replaces_whole_objects() -> None:
    m = _two_objects()
    assert np.array_equal(E.noisy_masks(m, 0.0, 0), m)
    flipped = E.noisy_masks(m, 1.0, 0)
    for region in (np.s_[0, :3, :3], np.s_[0, 5:, 5:]):
        values = np.unique(flipped[region])
        assert len(values) == 1 and values[0] != m[region][0, 0]  # one new class per object, never the old one
    assert (flipped[0, 3:5, :] == 0).all()  # background is not an object: it stays
    many = np.repeat(m, 400, 0)
    rate = (E.noisy_masks(many, 0.3, 1)[:, 0, 0] != 1).mean()
    assert 0.25 < rate < 0.35


def test_flip_moves_the_maps_with_the_image() -> None:
    x = torch.zeros(64, 3, 4, 4)
    x[:, :, 0, 0] = 1.0
    seg = torch.zeros(64, 4, 4, dtype=torch.int64)
    seg[:, 0, 0] = 3
    fx, fseg = E.flip_batch(torch.Generator().manual_seed(0), x, seg)
    moved = fx[:, 0, 0, 3] == 1
    assert 10 < moved.sum() < 54  # about half flipped
    assert torch.equal(fseg[:, 0, 3] == 3, moved) and torch.equal(fseg[:, 0, 0] == 3, ~moved)


def test_depth_proxy_puts_larger_objects_nearer() -> None:
    seg = np.zeros((1, 16, 16), np.int64)
    seg[0, :2, :2] = 1
    seg[0, 6:14, 6:14] = 2
    d = E.depth_proxy(seg)
    assert d[0, 10, 10] < d[0, 0, 0] < 1.0 and d[0, 4, 0] == 1.0


class _Fixed(torch.nn.Module):
    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(x), -1, -1, -1)


def test_pseudo_labels_ignore_unconfident_pixels() -> None:
    logits = torch.zeros(1, 4, 2, 2)
    logits[0, 1, 0, 0] = 5.0   # confident circle
    logits[0, 2, 1, 1] = 0.5   # unsure square
    labels = E.pseudo_label(_Fixed(logits), np.zeros((3, 3, 2, 2), np.float32), threshold=0.7)
    assert labels.seg[0, 0, 0] == 1 and labels.valid[0, 0, 0]
    assert labels.seg[0, 1, 1] == E.IGNORE and not labels.valid[0, 1, 1]
    assert labels.coverage() == pytest.approx(0.25)
    truth = np.zeros((3, 2, 2), np.int64)
    truth[:, 0, 0] = 1
    quality = E.expert_quality(labels, truth, np.ones((3, 2, 2), np.float32))
    assert quality["pseudo_miou"] == 1.0 and quality["pseudo_depth_spearman"] == 0.0  # one confident depth: 0


def test_depth_loss_is_scale_and_shift_invariant_unlike_an_absolute_loss() -> None:
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(4, 8, 8, generator=g), torch.rand(4, 8, 8, generator=g)
    valid = torch.rand(4, 8, 8, generator=g) > 0.3
    base = S.ssi_depth_loss(pred, target, valid)
    assert S.ssi_depth_loss(3.0 * pred - 1.0, 0.2 * target + 5.0, valid) == pytest.approx(base.item(), rel=1e-4)
    assert S.ssi_depth_loss(2.0 * target + 1.0, target, valid).item() == pytest.approx(0.0, abs=1e-5)
    assert F.mse_loss(2.0 * target + 1.0, target).item() > 0.5  # what an absolute loss would punish (pitfall 3)
    changed = target.clone()
    changed[~valid] = 100.0    # ignored pixels do not count
    assert S.ssi_depth_loss(pred, changed, valid) == pytest.approx(base.item(), rel=1e-5)
    flat = torch.ones(4, 8, 8)  # no relative-depth signal: left out, a finite zero, and its gradient finite
    p = pred.clone().requires_grad_()
    loss = S.ssi_depth_loss(p, flat, torch.zeros_like(valid))
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(p.grad).all()


def test_segmentation_loss_skips_ignored_pixels_and_an_empty_batch_is_zero() -> None:
    logits = torch.randn(2, 4, 3, 3, requires_grad=True)
    target = torch.full((2, 3, 3), E.IGNORE)
    loss = S.ignoring_cross_entropy(logits, target)
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(logits.grad).all()
    target[0, 0, 0] = 2
    assert S.ignoring_cross_entropy(logits, target).item() == pytest.approx(
        F.cross_entropy(logits[0, :, 0, 0][None], torch.tensor([2])).item(), rel=1e-5)


def test_miou_from_confusion() -> None:
    true = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    conf = E.confusion(pred, true)
    # IoU: class 0 = 1/3, class 1 = 2/3, class 2 = 1/2; class 3 absent from both: skipped
    assert E.miou(conf) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert E.confusion(pred, np.where(true == 2, E.IGNORE, true)).sum() == 4


def test_linear_probes_recover_a_linearly_coded_mask() -> None:
    masks = np.zeros((40, 8, 8), np.int64)
    masks[:20, :4] = 1
    masks[20:, 4:] = 2
    feats = F.one_hot(torch.from_numpy(masks), 4).permute(0, 3, 1, 2).float()   # features = the mask itself
    depth = masks.astype(np.float32) * 0.25
    probes = S.fit_probes(feats, masks, depth, seed=0)
    seg, d = probes.predict(feats, 8)
    assert E.miou(E.confusion(seg.numpy(), masks)) > 0.9
    assert float((d - torch.from_numpy(depth)).abs().mean()) < 0.05


def test_deployable_is_the_encoder_and_one_matmul_with_the_students_logits() -> None:
    from models.scene_clip import SceneCLIP, SceneCLIPArgs

    torch.manual_seed(0)
    student = SceneCLIP(SceneCLIPArgs(vocab_size=len(S.tokenizer()))).eval()
    scale = torch.nn.Parameter(torch.tensor(2.5))
    deployed = zero_shot_model(student, lambda: scale.exp())
    x = torch.rand(5, 3, 32, 32)
    with torch.no_grad():
        text = student.text(S.tokenizer().encode(S.PROMPTS, S.MAX_WORDS))
        expected = scale.exp() * F.normalize(student.image(x), dim=-1) @ F.normalize(text, dim=-1).t()
        assert torch.allclose(deployed(x), expected, atol=1e-4)
    assert {n for n, _ in deployed.named_buffers()} >= {"prompts"} and len(S.PROMPTS) == 18
    assert not any(n.startswith("text") for n, _ in deployed.named_parameters())  # no text tower on device
    ops = {str(n.target) for n in torch.export.export(deployed, (x,)).graph.nodes if n.op == "call_function"}
    assert not any("norm" in op and "batch" not in op for op in ops)  # no vector-norm op for the exporters


@pytest.mark.parametrize("bad,mentions", [({"noise": 1.5}, "noise=1.5"), ({"threshold": 1.0}, "threshold"),
                                          ({"arm": "siglip"}, "arm 'siglip'"), ({"epochs": 0}, "epochs=0"),
                                          ({"channels": [8, 8]}, "channels"), ({"lambda": 1}, "unknown keys")])
def test_recipe_values_are_range_checked(bad: dict, mentions: str) -> None:
    with pytest.raises(RecipeError, match=mentions.replace("[", r"\[")) as err:
        recipe_from_dict(bad)
    assert "->" in str(err.value) and "\n" not in str(err.value)


def _measured(gain10: float, gain30: float, rmse_b: float, zs_b: float, seeds: int = 3) -> dict:
    def arm(miou: float, rmse: float, zs: float, gain: float) -> dict:
        spread = [-0.002, 0.0, 0.002][:seeds]
        out = {"miou": miou, "depth_rmse": rmse, "zero_shot": zs, "miou_gain": gain}
        return {k: {"per_seed": [v + s for s in spread], "mean": v, "std": 0.002 if seeds > 1 else 0.0}
                for k, v in out.items()}

    rows = {"A_clip": arm(0.50, 0.10, 0.60, 0.0), "B_experts": arm(0.50 + gain10, rmse_b, zs_b, gain10),
            "B30_experts_noise30": arm(0.50 + gain30, 0.095, 0.60, gain30)}
    return {f"{a}/{k}": v for a, m in rows.items() for k, v in m.items()}


@pytest.mark.parametrize("measured,expected", [
    (_measured(0.05, 0.02, 0.09, 0.59), "pass"),
    (_measured(-0.01, -0.02, 0.09, 0.59), "fail"),     # no mIoU gain
    (_measured(0.05, 0.02, 0.11, 0.59), "fail"),       # depth RMSE worse
    (_measured(0.05, 0.02, 0.09, 0.57), "fail"),       # zero-shot more than 2 points down
    (_measured(0.05, 0.06, 0.09, 0.59), "fail"),       # the noisier expert helps more
    (_measured(0.05, 0.02, 0.09, 0.59, seeds=1), "inconclusive"),
])
def test_verdicts(measured: dict, expected: str) -> None:
    from trainers.clip_experts.claim import verdict

    assert verdict(measured)[0] == expected


def test_dashboard_figures_from_cards_and_examples() -> None:
    from trainers.clip_experts.dashboard import colourise, metrics_figure, metrics_table, scene_figure

    found = {"/zoo/clip_experts": {"recipe": {"arm": "experts", "noise": 0.1},
                                   "metrics": {"miou": 0.6, "depth_rmse": 0.08, "zero_shot": 0.7}},
             "/zoo/clip_experts_clip": {"recipe": {"arm": "clip"},
                                        "metrics": {"miou": 0.5, "depth_rmse": 0.1, "zero_shot": 0.71}}}
    table = metrics_table(found)
    assert list(table["arm"]) == ["experts", "clip"] and table["expert noise"].tolist()[0] == 0.1
    fig = metrics_figure(table)
    assert [list(t.y) for t in fig.data] == [[0.6, 0.5], [0.08, 0.1], [0.7, 0.71]]
    mask = np.array([[0, 1], [E.IGNORE, 3]])
    assert colourise(mask).shape == (2, 2, 3) and tuple(colourise(mask)[1, 0]) == (128, 128, 128)
    ex = {"image": np.zeros((2, 3, 4, 4), np.float32), "mask": np.zeros((2, 4, 4), np.int64),
          "pseudo": np.full((2, 4, 4), E.IGNORE), "probe_seg": np.ones((2, 4, 4), np.int64)}
    assert len(scene_figure(ex, "t").data) == 8                                  # 2 scenes x 4 panels
    assert len(scene_figure({**ex, "pseudo": np.zeros((0, 4, 4))}, "t").data) == 6  # CLIP only: no pseudo-label


@pytest.mark.slow
def test_quick_claim_is_labelled() -> None:
    from trainers.clip_experts.claim import reproduce

    result = reproduce(quick=True)
    assert result.verdict.endswith("(quick)") and result.seeds == [0]
    for key in ("A_clip/miou", "B_experts/depth_rmse", "B_experts/pseudo_coverage", "B30_experts_noise30/miou_gain",
                "A_clip/zero_shot"):
        assert key in result.measured, key
