"""Exporters: checkpoint -> compressed artifact (ONNX, Core ML, MLX, torch) with a manifest and a verification result,
for vision and language models alike; one plug-in per format in exporters/formats.py."""

import warnings

warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)  # torch.export pytree noise

from exporters.formats import FORMATS  # noqa: E402,F401
