"""Diffusion MAViL (Nunez et al. 2310.03937): masked audio-video pre-training whose decoders denoise the masked
patches, with a cross-attention video decoder and a masking-ratio curriculum with adaptive batches. Decoders,
masking and diffusion are training-time only: the main job deploys the pre-trained audio encoder (every token, no
masking) with its linear probe as head, from the MAViL-style arm A and the full DiffMAViL arm C."""

from trainers.adapters import recipe_module_trainer
from trainers.papers import Deployable, Paper, lazy

EXPORTS = {"onnx": ("fp16", "int8", "int4"), "mlx": ("fp16", "int8", "int4"), "coreml": ("fp16", "int8", "int4")}
BASELINE_EXPORTS = {"onnx": ("none", "int8"), "mlx": ("none",), "coreml": ("none",)}

PAPER = Paper(
    key="diffmavil", card="card.md",
    title="Diffusion Models as Masked Audio-Video Learners", arxiv="2310.03937",
    code="https://arxiv.org/abs/2310.03937",
    summary="Cheaper masked audio-video pre-training (diffusion decoders, cross-attention video decoder, ratio "
            "curriculum with adaptive batches); the deployed audio encoder is unchanged.",
    models=("av_audio_encoder",), train=recipe_module_trainer("trainers.diffmavil.recipe"),
    claim=lazy("trainers.diffmavil.claim", "reproduce"),
    claim_text="On synthetic audio-video digits, training FLOPs order C < B < A at equal epochs (C/A beside the "
               "paper's 0.68) and the audio-probe accuracy of B and C is at least A's minus 2 points (3 seeds).",
    deployables=(Deployable(recipe="configs/diffmavil_a.yaml", exports=BASELINE_EXPORTS),
                 Deployable(recipe="configs/diffmavil_c.yaml", exports=EXPORTS)),
    dashboard=lazy("trainers.diffmavil.dashboard", "section"),
)
