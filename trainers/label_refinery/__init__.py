"""Label Refinery (Bagherinezhad et al. 1805.02641): students trained on a previous model's soft labels of each
augmented crop. The main job deploys generation 1 (ground truth) and generation 2 (refined by generation 1): the
same architecture, so profiles compare generations at identical latency."""

from trainers.adapters import recipe_module_trainer
from trainers.papers import Deployable, Paper, lazy

EXPORTS = {"onnx": ("none", "int8"), "mlx": ("none", "int8"), "coreml": ("none", "int8")}

PAPER = Paper(
    key="label-refinery", card="card.md",
    title="Label Refinery: Improving ImageNet Classification through Label Progression",
    arxiv="1805.02641", code="https://github.com/hessamb/label-refinery",
    summary="Better accuracy at the same latency: retrain the deployed network on a refinery's crop-wise soft labels.",
    models=("lcs_cnn",), train=recipe_module_trainer("trainers.label_refinery.recipe"),
    claim=lazy("trainers.label_refinery.claim", "reproduce"),
    claim_text="On 400 digits with strong crops, generation 2 (refined by generation 1) is at least as accurate with "
               "a smaller train-test gap, crop-wise labels beat image-level ones, and a 4x wider refinery helps "
               "at least as much.",
    deployables=(Deployable(recipe="configs/refinery_gen1.yaml", exports=EXPORTS),
                 Deployable(recipe="configs/refinery_gen2.yaml", exports=EXPORTS, needs=("refinery_gen1",))),
)
