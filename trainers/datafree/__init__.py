"""Layer-wise data-free compression (Horton et al. 2011.09058): each conv/linear layer reconstructed on inputs
synthesised from BatchNorm statistics, no real data. The method lives in exporters/compression/datafree.py
(`--compress datafree:bits=B`, `datafree:sparsity=S`); this plug-in trains the BatchNorm CNN it compresses, deploys
it at 4 and 3 bits, and runs the card's claim."""

from trainers.adapters import train_classifier
from trainers.papers import Deployable, Paper, lazy

SPECS = ("none", "datafree:bits=4", "datafree:bits=3")

PAPER = Paper(
    key="datafree", card="card.md",
    title="Layer-Wise Data-Free CNN Compression",
    arxiv="2011.09058", code="(no public implementation)",
    summary="Compress a trained CNN to 2-8 bits or 70-90 % sparsity with no data: each layer is refit on inputs "
            "drawn from its BatchNorm statistics.",
    models=("lcs_cnn",), train=train_classifier, dashboard=lazy("trainers.datafree.dashboard", "section"),
    claim=lazy("trainers.datafree.claim", "reproduce"),
    claim_text="On digits, layer-wise reconstruction on BatchNorm-synthesised inputs beats round-to-nearest at 2 and "
               "3 bits, stays within 3 points of the same reconstruction on real activations at 3 and 4 bits, "
               "matches the float model at 8 bits, and refitting a 90 %-pruned network beats not refitting.",
    deployables=(Deployable(recipe="configs/datafree_cnn.yaml", exports={"onnx": SPECS, "mlx": SPECS, "coreml": SPECS}),),
)
