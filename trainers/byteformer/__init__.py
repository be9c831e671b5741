"""ByteFormer (Horton et al. 2306.00238): classification straight from file bytes. The main job deploys a small
ByteFormer trained on JPEG q60 digit files, exported at a fixed length with int32 byte tokens and a mask input, and
profiled on held-out JPEG files; the file encoding stays outside the model (the camera supplies the bytes)."""

from trainers.adapters import recipe_module_trainer
from trainers.papers import Deployable, Paper, lazy

EXPORTS = {"onnx": ("fp16", "int8", "int4"), "mlx": ("fp16", "int8", "int4"), "coreml": ("fp16", "int8", "int4")}

PAPER = Paper(
    key="byteformer", card="card.md",
    title="Bytes Are All You Need: Transformers Operating Directly On File Bytes", arxiv="2306.00238",
    code="https://github.com/apple/corenet/tree/main/projects/byteformer",
    summary="No decoder on device: a windowed transformer classifies the camera's file bytes (JPEG, PNG, TIFF) "
            "directly, at a fixed byte length with an explicit padding mask.",
    models=("byteformer",), train=recipe_module_trainer("trainers.byteformer.recipe"),
    claim=lazy("trainers.byteformer.claim", "reproduce"),
    claim_text="Digits as raw / PNG / TIFF / JPEG bytes all score > 30 % (raw within 5 points of a pixel ViT); a "
               "byte-value permutation changes accuracy by <= 1.5 points; shuffling positions costs >= 20 points, "
               "reversal less; with correct masks batch-1 and batch-64 JPEG logits agree within 1e-5.",
    deployables=(Deployable(recipe="configs/byteformer_jpeg.yaml", exports=EXPORTS),),
    dashboard=lazy("trainers.byteformer.dashboard", "section"),
)
