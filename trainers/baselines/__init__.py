"""Reference CNNs every paper is compared against: ResNet, MobileNetV2 and ConvMixer on digits."""

from trainers.adapters import train_classifier
from trainers.papers import Deployable, Paper

VISION_FORMATS = {
    "torch": ("none",),
    "onnx": ("none", "fp16", "int8", "int4", "prune50"),
    "mlx": ("none", "fp16", "int8", "int4", "prune50"),
    "coreml": ("none", "fp16", "int8", "int4", "prune50", "palette4"),
}

PAPER = Paper(
    key="baselines", baseline=True,
    title="Baselines: ResNet, MobileNetV2, ConvMixer", arxiv="1512.03385", code="https://github.com/pytorch/vision",
    summary="Generic digit CNNs in every format and compression: the yardstick for the papers' models.",
    models=("resnet", "mobilenetv2", "convmixer"),
    train=train_classifier,
    deployables=tuple(Deployable(recipe=f"configs/{name}.yaml", exports=VISION_FORMATS)
                      for name in ("digits_resnet", "digits_mobilenetv2", "digits_convmixer")),
)
