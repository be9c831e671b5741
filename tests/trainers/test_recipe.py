from __future__ import annotations

import pytest

from models.errors import RecipeError
from trainers.recipe import CONFIG_DIR, load_recipe


def test_bundled_recipes_load() -> None:
    names = [p.stem for p in CONFIG_DIR.glob("*.yaml")]
    assert names
    for name in names:
        assert load_recipe(name).model


def test_unknown_key_is_an_error(tmp_path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text("model: resnet\nepochz: 3\n")
    with pytest.raises(RecipeError, match=r"unknown keys \['epochz'\]"):
        load_recipe(p)


def test_unknown_model_arg_is_an_error(tmp_path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text("model: resnet\nmodel_args: {depth: 3}\n")
    with pytest.raises(RecipeError, match="depth"):
        load_recipe(p)


def test_overrides_keep_types() -> None:
    r = load_recipe("digits_resnet", ["epochs=3", "lr=0.1", "model_args.widths=[4, 8]"])
    assert r.epochs == 3 and r.lr == 0.1 and r.model_args["widths"] == [4, 8]
    assert r.hash() != load_recipe("digits_resnet").hash()


def test_bad_override_and_missing_recipe() -> None:
    with pytest.raises(RecipeError, match="key=value"):
        load_recipe("digits_resnet", ["epochs"])
    with pytest.raises(RecipeError, match="not found"):
        load_recipe("no_such_recipe")
