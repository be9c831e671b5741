"""Learning Neural Network Subspaces (Wortsman et al. 2102.10472): lines of accurate networks, BN recalibration."""

from trainers.adapters import recipe_module_trainer
from trainers.papers import Deployable, Paper, lazy

POINTS = ("lcs:alpha=0", "lcs:alpha=0.5", "lcs:alpha=1")  # the two ends and the midpoint of the line

PAPER = Paper(
    key="subspaces", card="card.md",
    title="Learning Neural Network Subspaces", arxiv="2102.10472", code="https://github.com/apple/learning-subspaces",
    summary="A line of networks trained together: its midpoint beats the ends without extra inference cost.",
    models=("lcs_cnn",), train=recipe_module_trainer("trainers.subspaces.recipe"),
    claim=lazy("trainers.subspaces.claim", "reproduce"),
    claim_text="The midpoint of a trained line beats a standard network trained alone, in accuracy and calibration.",
    deployables=(Deployable(recipe="configs/line.yaml",
                            exports={"onnx": POINTS, "mlx": POINTS, "coreml": POINTS}),),
)
