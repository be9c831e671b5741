"""LCS (Nunez et al. 2110.04252): one line of networks from dense to 97.5 % unstructured sparsity."""

from pathlib import Path
from typing import Any

from trainers.papers import Deployable, Paper


def train(recipe: Path, out: Path, overrides: list[str], check_only: bool = False) -> dict[str, Any]:
    from trainers.lcs.recipe import recipe_from_dict, train as train_lcs
    from trainers.recipe import read_recipe_yaml

    data, path = read_recipe_yaml(recipe, overrides)
    r = recipe_from_dict(data, str(path))
    return {} if check_only else train_lcs(r, out)


def reproduce(quick: bool = False, seeds: list[int] | None = None):
    from trainers.lcs.claim import reproduce as run

    return run(quick=quick, seeds=seeds)


ALPHAS = ("lcs:alpha=0.1", "lcs:alpha=0.5", "lcs:alpha=1")  # 90 % sparse, 50 %, dense: points on one line

PAPER = Paper(
    key="lcs", card="card.md",
    title="LCS: Learning Compressible Subspaces for Adaptive Network Compression at Inference Time",
    arxiv="2110.04252", code="https://github.com/apple/learning-compressible-subspaces",
    summary="One trained line of networks: the device picks its sparsity alpha at deployment, no retraining.",
    models=("lcs_cnn",), train=train, claim=reproduce,
    claim_text="One LCS+L line is within 3 points of per-sparsity models over 50-95 % sparsity and beats post-hoc "
               "pruning at 90/95 %.",
    deployables=(Deployable(recipe="configs/lcs_l.yaml",
                            exports={"onnx": ALPHAS, "mlx": ALPHAS, "coreml": ALPHAS}),),
)
