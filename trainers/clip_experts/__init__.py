"""CLIP meets model-zoo experts (Salehi et al. 2310.14108): CLIP trained with light dense heads on pseudo-labels
from task experts. The main job deploys the zero-shot scene classifier of both arms (CLIP only; CLIP + expert
pseudo-labels): the image encoder with the prompt text embeddings as a constant matrix, so on-device zero-shot is the
encoder and one matmul; the text encoder, the heads and the experts are training-only."""

from trainers.adapters import recipe_module_trainer
from trainers.papers import Deployable, Paper, lazy

EXPORTS = {"onnx": ("fp16", "int8", "int4"), "mlx": ("fp16", "int8", "int4"), "coreml": ("fp16", "int8", "int4")}
CLIP_EXPORTS = {"onnx": ("fp16",), "mlx": ("fp16",), "coreml": ("fp16",)}

PAPER = Paper(
    key="clip-experts", card="card.md",
    title="CLIP meets Model Zoo Experts: Pseudo-Supervision for Visual Enhancement",
    arxiv="2310.14108", code="no public implementation (nearest: apple/corenet multi_modal_img_text/clip.py)",
    summary="Better dense features from the same CLIP encoder: training-time heads on expert pseudo-labels, nothing "
            "added at inference; zero-shot ships as the encoder plus one prompt-matrix matmul.",
    models=("scene_clip_zeroshot",), train=recipe_module_trainer("trainers.clip_experts.recipe"),
    claim=lazy("trainers.clip_experts.claim", "reproduce"),
    claim_text="On procedural scenes with an imperfect expert (tiny U-Net, 10 % label noise; larger-is-nearer depth), "
               "CLIP + pseudo-label heads raises frozen-encoder probe mIoU and lowers depth RMSE vs CLIP only, keeps "
               "zero-shot accuracy within 2 points, and a 30 %-noise expert gives a smaller mIoU gain (mean of 3 "
               "seeds).",
    deployables=(Deployable(recipe="configs/clip_experts.yaml", exports=EXPORTS),
                 Deployable(recipe="configs/clip_experts_clip.yaml", exports=CLIP_EXPORTS)),
    dashboard=lazy("trainers.clip_experts.dashboard", "section"),
)
