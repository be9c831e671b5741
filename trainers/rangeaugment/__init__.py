"""RangeAugment (Mehta et al. 2212.10553): learned brightness / contrast / noise ranges driven by a target PSNR.
The main job deploys the CNN trained with RangeAugment and the same CNN without it: one architecture, so profiles
compare them at identical latency; the augmentor is training-only and never exported."""

from trainers.adapters import recipe_module_trainer
from trainers.papers import Deployable, Paper, lazy

EXPORTS = {"onnx": ("none", "int8"), "mlx": ("none", "int8"), "coreml": ("none", "int8")}

PAPER = Paper(
    key="rangeaugment", card="card.md",
    title="RangeAugment: Efficient Online Augmentation with Range Learning",
    arxiv="2212.10553", code="https://github.com/apple/corenet/tree/main/projects/range_augment",
    summary="Robustness to photometric shift at no inference cost: augmentation ranges learned in training from a "
            "target PSNR; the deployed model is the plain CNN.",
    models=("range_augment_cnn",), train=recipe_module_trainer("trainers.rangeaugment.recipe"),
    claim=lazy("trainers.rangeaugment.claim", "reproduce"),
    claim_text="On 16x16 digits the measured PSNR tracks the 40 -> 20 dB target within 2 dB, the brightness range "
               "is narrower without L_NA, and RangeAugment beats no augmentation on four photometric corruptions "
               "with clean accuracy within 1 point (mean of 5 seeds).",
    deployables=(Deployable(recipe="configs/rangeaugment.yaml", exports=EXPORTS),
                 Deployable(recipe="configs/rangeaugment_none.yaml", exports=EXPORTS)),
    dashboard=lazy("trainers.rangeaugment.dashboard", "section"),
)
