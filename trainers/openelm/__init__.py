"""OpenELM byte-level LM recipe (card 01) and the claims of cards 01 (layer-wise scaling) and 03 (SeedLM)."""

from trainers.adapters import train_byte_lm
from trainers.papers import Deployable, Paper, lazy


LM_SPECS = ("none", "int8", "int4")

PAPER = Paper(
    key="openelm", card="card.md", task="lm",
    title="OpenELM: An Efficient Language Model Family with Open Training and Inference Framework",
    arxiv="2404.14619", code="https://github.com/apple/corenet",
    summary="Layer-wise scaling of heads and FFN widths: more accuracy per parameter in a small decoder LM.",
    models=("openelm",), train=train_byte_lm, claim=lazy("trainers.openelm.claim", "reproduce_openelm"),
    claim_text="At equal parameters, layer-wise scaling reaches lower validation bits per byte than an isotropic LM.",
    deployables=(Deployable(recipe="configs/openelm_main.yaml", scenario="lm",
                            exports={"torch": LM_SPECS, "onnx": LM_SPECS, "mlx": LM_SPECS, "coreml": LM_SPECS}),),
)
