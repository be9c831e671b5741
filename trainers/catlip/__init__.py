"""CatLIP (Mehta et al. 2404.15653): image-caption pre-training recast as multi-label classification over caption
nouns. The main job deploys the scene encoder pre-trained with CatLIP and the same encoder pre-trained with CLIP,
each with a linear digit probe as its head (the V-way tagger and the text tower are training-only), so records
compare their probe accuracy at identical latency."""

from trainers.adapters import recipe_module_trainer
from trainers.papers import Deployable, Paper, lazy

EXPORTS = {"onnx": ("fp16", "int8", "int4"), "mlx": ("fp16", "int8", "int4"), "coreml": ("fp16", "int8", "int4")}
CLIP_EXPORTS = {"onnx": ("fp16",), "mlx": ("fp16",), "coreml": ("fp16",)}

PAPER = Paper(
    key="catlip", card="card.md",
    title="CatLIP: CLIP-level Visual Recognition Accuracy with 2.7x Faster Pre-training on Web-scale Image-text Data",
    arxiv="2404.15653", code="https://github.com/apple/corenet/tree/main/projects/catlip",
    summary="Cheaper image-text pre-training: caption nouns become multi-hot labels, no text encoder or batch-wide "
            "similarity; the deployed part is a plain image encoder.",
    models=("scene_encoder",), train=recipe_module_trainer("trainers.catlip.recipe"),
    claim=lazy("trainers.catlip.claim", "reproduce"),
    claim_text="On procedural captioned scenes CatLIP steps are faster than CLIP's, its shape/colour/digit linear "
               "probes are within 2 points of CLIP's, and a 5-shot digit head initialised from its rows beats random "
               "init by >= 5 points (mean of 3 seeds).",
    deployables=(Deployable(recipe="configs/catlip.yaml", exports=EXPORTS),
                 Deployable(recipe="configs/catlip_clip.yaml", exports=CLIP_EXPORTS)),
    dashboard=lazy("trainers.catlip.dashboard", "section"),
)
