"""SeedLM (arXiv 2410.10714): weights as seeds of a pseudo-random generator plus a few coefficients."""

from trainers.papers import Deployable, Paper, lazy

MAIN_LM = "../openelm/configs/openelm_main.yaml"  # the same checkpoint as OpenELM's deployable


PAPER = Paper(
    key="seedlm", card="card.md", task="lm",
    title="SeedLM: Compressing LLM Weights into Seeds of Pseudo-Random Generators", arxiv="2410.10714",
    code="https://arxiv.org/abs/2410.10714",
    summary="4- and 3-bit weights with no calibration data: each block is an LFSR seed and a few coefficients.",
    models=("openelm",), claim=lazy("trainers.openelm.claim", "reproduce_seedlm"),
    claim_text="At matched bits per weight, SeedLM's reconstruction error and bpb beat round-to-nearest.",
    deployables=(Deployable(recipe=MAIN_LM, scenario="lm", trainer_of="openelm",
                            exports={"onnx": ("seedlm4", "seedlm3"), "mlx": ("seedlm4", "seedlm3")}),),
)
