"""Multi-scale data samplers (Nunez et al. 2309.04502): a new input size per step with the batch scaled so pixels
per step stay constant, and a resolution curriculum. The samplers (trainers/samplers.py) serve every vision recipe
through its `sampler:` section; this plug-in deploys the single-scale and the variable-batch multi-scale CNN, each
exported at the base size plus the enumerated sizes it was trained at, and profiled at every size."""

from trainers.adapters import train_classifier
from trainers.papers import Deployable, Paper, lazy

EXPORTS = {"onnx": ("none", "int8"), "mlx": ("none", "int8"), "coreml": ("none", "int8")}

PAPER = Paper(
    key="multiscale", card="card.md",
    title="On the Efficacy of Multi-scale Data Samplers for Vision Applications",
    arxiv="2309.04502", code="https://github.com/apple/corenet",
    summary="One network for several input sizes: trained with a variable-resolution, variable-batch sampler, "
            "exported with enumerated input sizes and profiled for latency and accuracy at each.",
    models=("lcs_cnn",), train=train_classifier,
    claim=lazy("trainers.multiscale.claim", "reproduce"),
    claim_text="On digits at 32x32, the variable-batch multi-scale sampler takes <= 0.75x the single-scale "
               "optimizer steps, is more accurate at the off-base sizes 16-48 and within 1 point at 32; the "
               "resolution curriculum needs <= 0.8x its pixel compute within 1 point.",
    deployables=(Deployable(recipe="configs/ms_ssc_fbs.yaml", exports=EXPORTS),
                 Deployable(recipe="configs/ms_msc_vbs.yaml", exports=EXPORTS)),
    dashboard=lazy("trainers.multiscale.dashboard", "section"),
)
