"""Learning Neural Network Subspaces (Wortsman et al. 2102.10472): lines of accurate networks, BN recalibration."""

from pathlib import Path
from typing import Any

from trainers.papers import Deployable, Paper


def train(recipe: Path, out: Path, overrides: list[str], check_only: bool = False) -> dict[str, Any]:
    from trainers.recipe import read_recipe_yaml
    from trainers.subspaces.recipe import recipe_from_dict, train as train_line

    data, path = read_recipe_yaml(recipe, overrides)
    r = recipe_from_dict(data, str(path))
    return {} if check_only else train_line(r, out)


def reproduce(quick: bool = False, seeds: list[int] | None = None):
    from trainers.subspaces.claim import reproduce as run

    return run(quick=quick, seeds=seeds)


POINTS = ("lcs:alpha=0", "lcs:alpha=0.5", "lcs:alpha=1")  # the two ends and the midpoint of the line

PAPER = Paper(
    key="subspaces", card="card.md",
    title="Learning Neural Network Subspaces", arxiv="2102.10472", code="https://github.com/apple/learning-subspaces",
    summary="A line of networks trained together: its midpoint beats the ends without extra inference cost.",
    models=("lcs_cnn",), train=train, claim=reproduce,
    claim_text="The midpoint of a trained line beats a standard network trained alone, in accuracy and calibration.",
    deployables=(Deployable(recipe="configs/line.yaml",
                            exports={"onnx": POINTS, "mlx": POINTS, "coreml": POINTS}),),
)
