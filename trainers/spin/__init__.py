"""SPIN (arXiv 2207.10237): cross-layer weight sharing for isotropic nets, weight fusion, small-scale claim."""

from trainers.adapters import train_classifier
from trainers.papers import Deployable, Paper, lazy


SPECS = ("none", "fp16", "int8", "int4")

PAPER = Paper(
    key="spin", card="card.md",
    title="SPIN: An Empirical Evaluation on Sharing Parameters of Isotropic Networks", arxiv="2207.10237",
    code="https://github.com/apple/ml-spin",
    summary="Isotropic networks share pointwise weights across layers: fewer bytes to ship at the same FLOPs.",
    models=("spin_convmixer", "vit"), train=train_classifier, claim=lazy("trainers.spin.claim", "run"),
    claim_text="A ConvMixer with 4 shared pointwise weights keeps the accuracy of the unshared D=8 model and beats "
               "a D=4 model with as many parameters.",
    deployables=(Deployable(recipe="configs/spin_convmixer.yaml",
                            exports={"torch": ("none",), "onnx": SPECS, "mlx": SPECS, "coreml": SPECS}),),
)
