"""CatLIP (card 07): the caption labeller (cleaning, lemmas, part of speech, vocabulary, empty captions), the BCE's
reduction, recipe checks, the probe head, the transfer init and the quick claim."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.errors import RecipeError
from trainers.catlip.labeller import (LEMMA_OF_KEY, Labeller, build_vocabulary, caption_synsets, clean,
                                      synset_key)


def lemmas(caption: str, respect_pos: bool = True) -> list[str]:
    return [LEMMA_OF_KEY[k] for k in caption_synsets(caption, respect_pos)]


def test_clean_unquotes_strips_html_collapses_space_and_lowercases() -> None:
    assert clean("A%20Photo+of <b>two</b>\n\n  Squares&amp;more ") == "a photo of two squares&more"
    assert lemmas("A%20Photo+of+two+<i>Squares</i>") == ["photo", "two", "square"]


def test_plurals_map_to_the_singular_synset() -> None:
    assert lemmas("three circles and two sixes under blue skies") == ["three", "circle", "two", "six", "sky"]
    assert synset_key("circle") == "n13873502"


def test_colour_adjectives_are_not_labels_unlike_upstream() -> None:
    """The upstream pitfall: tags computed but unused, so 'blue' (it has a noun sense) becomes a label."""
    assert lemmas("a photo of a blue square") == ["photo", "square"]
    assert lemmas("a photo of a blue square", respect_pos=False) == ["photo", "blue", "square"]
    assert lemmas("the sky is blue") == ["sky"]            # predicative: an adjective too
    assert lemmas("free to use") == lemmas("look at this") == []  # verbs with noun senses


@pytest.mark.parametrize("caption", ["", "   ", "so pretty", "<p></p>", "%%%", "wow"[:0], "12345 !!!"])
def test_a_caption_without_a_known_noun_is_an_all_zero_target(caption: str) -> None:
    labeller = Labeller([synset_key(w) for w in ("square", "circle", "seven")])
    assert labeller.labels(caption) == []
    targets = labeller.targets([caption, "a red square next to a seven"])
    assert targets.shape == (2, 3) and not targets[0].any() and targets[1].tolist() == [1.0, 0.0, 1.0]


def test_vocabulary_is_the_top_v_by_caption_count() -> None:
    captions = ["a square"] * 5 + ["a circle"] * 3 + ["a triangle and a square"] * 2 + ["a seven"]
    assert build_vocabulary(captions, 2) == [synset_key("square"), synset_key("circle")]
    labeller = Labeller(build_vocabulary(captions, 10))
    assert len(labeller) == 4 and labeller.row_of("square") == 0 and labeller.row_of("blue") is None
    assert isinstance(labeller.index, dict)
    with pytest.raises(ValueError):
        build_vocabulary(captions, 0)


def test_batch_mean_bce_is_v_times_the_per_element_mean() -> None:
    from trainers.catlip.recipe import catlip_bce

    torch.manual_seed(0)
    logits, targets = torch.randn(8, 23), (torch.rand(8, 23) < 0.1).float()
    batch_mean, mean = catlip_bce(logits, targets, "batch_mean"), catlip_bce(logits, targets, "mean")
    manual = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(1).mean()
    assert torch.allclose(batch_mean, manual) and torch.allclose(batch_mean, 23 * mean)


@pytest.mark.parametrize("bad,mentions", [({"vocab_size": 0}, "vocab_size=0"), ({"arm": "siglip"}, "arm"),
                                          ({"bce": "sum"}, "bce"), ({"channels": [8, 8]}, "channels"),
                                          ({"probe": "size"}, "probe"), ({"lr": -1.0}, "lr"),
                                          ({"n_train": 10}, "n_train"), ({"bogus": 1}, "bogus")])
def test_recipe_values_are_range_checked(bad: dict, mentions: str) -> None:
    from trainers.catlip.recipe import recipe_from_dict

    with pytest.raises(RecipeError, match=mentions):
        recipe_from_dict(bad)


def test_saved_model_head_is_the_probe() -> None:
    """The saved model (conv blocks, standardisation as projection, probe as head) gives the probe's logits."""
    from trainers.catlip.recipe import (CatLIPRecipe, build_arm, pooled_features, probes, scene_data,
                                        with_probe_head)

    recipe = CatLIPRecipe(n_train=96, n_test=32, n_probe=96, channels=[4, 4, 8, 8])
    data = scene_data(recipe)
    _, encoder = build_arm(recipe, data)
    encoder.eval()
    found = probes(encoder, data, recipe.n_probe)
    model = with_probe_head(encoder, found["digit"])
    f = pooled_features(encoder, data.test.images)
    with torch.no_grad():
        logits = model(torch.from_numpy(data.test.images)).numpy()
    assert np.allclose(logits, found["digit"].logits(f), atol=1e-3)
    assert set(found) == {"shape", "colour", "digit"} and all(0 <= p.accuracy <= 1 for p in found.values())


def _measured(catlip_ms: float, probe_b: float, row: float, seeds: int = 3) -> dict:
    def arm(mean: float) -> dict:
        return {"per_seed": [mean] * seeds, "mean": mean, "std": 0.0}

    return {"B_catlip/step_ms": arm(catlip_ms), "A_clip/step_ms": arm(100.0), "B_catlip/probe_mean": arm(probe_b),
            "A_clip/probe_mean": arm(0.80), "B_catlip/row_init": arm(row), "B_catlip/random_init": arm(0.30)}


@pytest.mark.parametrize("measured,expected", [
    (_measured(90.0, 0.79, 0.40), "pass"),
    (_measured(110.0, 0.79, 0.40), "fail"),     # slower steps
    (_measured(90.0, 0.77, 0.40), "fail"),      # probes more than 2 points below CLIP
    (_measured(90.0, 0.79, 0.33), "fail"),      # transfer gain below 5 points
    (_measured(90.0, 0.79, 0.40, seeds=1), "inconclusive"),
])
def test_verdicts(measured: dict, expected: str) -> None:
    from trainers.catlip.claim import verdict

    assert verdict(measured)[0] == expected


def test_quick_claim_is_labelled(capsys) -> None:
    from trainers.catlip.claim import reproduce

    result = reproduce(quick=True)
    assert result.verdict.endswith("(quick)") and result.seeds == [0]
    for key in ("A_clip/probe_mean", "B_catlip/probe_mean", "B_catlip/step_ms", "A_clip/step_ms",
                "B_catlip/row_init", "B_catlip/random_init", "B_catlip_mean_bce/probe_mean",
                "B_catlip_upstream_labeller/probe_colour"):
        assert key in result.measured, key


def test_dashboard_figures_from_cards_and_records(tmp_path) -> None:
    import json

    import pandas as pd

    from trainers.catlip.dashboard import artifact_figure, probe_figure, probe_table

    metrics = {"probe_shape": 0.7, "probe_colour": 0.6, "probe_digit": 0.5, "probe_mean": 0.6, "steps": 96}
    found = {"/zoo/catlip": {"metrics": metrics, "recipe": {"arm": "catlip", "probe": "digit"}},
             "/zoo/catlip_clip": {"metrics": {**metrics, "probe_colour": 0.9}, "recipe": {"arm": "clip"}}}
    table = probe_table(found)
    assert list(table["arm"]) == ["catlip", "clip"] and list(table["probe colour"]) == [0.6, 0.9]
    assert [list(t.y) for t in probe_figure(table).data] == [[0.7, 0.6, 0.5], [0.7, 0.9, 0.5]]
    rows = []
    for i, (ck, c, v) in enumerate([("catlip", "int8", 0.58), ("catlip", "int8", 0.59), ("catlip", "int4", 0.55),
                                    ("catlip_clip", "fp16", 0.7), ("gone", "fp16", 0.1)]):
        art = tmp_path / f"art{i}"
        art.mkdir()
        if ck != "gone":  # an artifact folder deleted since: skipped
            (art / "manifest.json").write_text(json.dumps({"checkpoint": f"/zoo/{ck}"}))
        rows.append({"id": i, "artifact.path": str(art), "artifact.format": "onnx", "artifact.compression": c,
                     "accuracy.value": v})
    records = pd.DataFrame(rows)
    fig = artifact_figure(records)
    assert {t.name: list(t.y) for t in fig.data} == {"catlip": [0.59, 0.55], "catlip_clip": [0.7]}
    assert artifact_figure(pd.DataFrame()) is None
