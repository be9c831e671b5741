"""QuantSpec (arXiv 2502.10424): self-speculative decoding with a hierarchical quantized KV cache, small-scale claim."""

from trainers.adapters import train_byte_lm
from trainers.papers import Deployable, Paper, lazy

MAIN_LM = "../openelm/configs/openelm_main.yaml"  # the same checkpoint as OpenELM's deployable


PAPER = Paper(
    key="quantspec", card="card.md", task="lm",
    title="QuantSpec: Self-Speculative Decoding with Hierarchical Quantized KV Cache", arxiv="2502.10424",
    code="https://arxiv.org/abs/2502.10424",
    summary="A 4-bit view of the same model drafts tokens that the 8-bit-cache model verifies: exact, fewer passes.",
    models=("openelm",), claim=lazy("trainers.quantspec.claim", "reproduce"),
    train=train_byte_lm,  # its own recipes (configs/quantspec_bandwidth.yaml) are OpenELM byte LMs
    claim_text="Greedy self-speculative output equals the verifier's; the 4-bit draft is accepted more often than a "
               "sparse-KV draft of the same cache size; sampling stays lossless.",
    deployables=(Deployable(recipe=MAIN_LM, scenario="specdec", trainer_of="openelm", exports={"torch": ("none",)}),),
)
