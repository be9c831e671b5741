"""LCS (Nunez et al. 2110.04252): one line of networks from dense to 97.5 % unstructured sparsity."""

from trainers.adapters import recipe_module_trainer
from trainers.papers import Deployable, Paper, lazy

ALPHAS = ("lcs:alpha=0.1", "lcs:alpha=0.5", "lcs:alpha=1")  # 90 % sparse, 50 %, dense: points on one line

PAPER = Paper(
    key="lcs", card="card.md",
    title="LCS: Learning Compressible Subspaces for Adaptive Network Compression at Inference Time",
    arxiv="2110.04252", code="https://github.com/apple/learning-compressible-subspaces",
    summary="One trained line of networks: the device picks its sparsity alpha at deployment, no retraining.",
    models=("lcs_cnn",), train=recipe_module_trainer("trainers.lcs.recipe"),
    claim=lazy("trainers.lcs.claim", "reproduce"),
    claim_text="One LCS+L line is within 3 points of per-sparsity models over 50-95 % sparsity and beats post-hoc "
               "pruning at 90/95 %.",
    deployables=(Deployable(recipe="configs/lcs_l.yaml",
                            exports={"onnx": ALPHAS, "mlx": ALPHAS, "coreml": ALPHAS}),),
)
