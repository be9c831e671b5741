"""Exporters: checkpoint -> compressed artifact (ONNX, Core ML, MLX) with a manifest and a verification result."""

import warnings

warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)  # torch.export pytree noise


FORMATS = ("onnx", "coreml", "mlx", "torch")  # torch: a safetensors folder for the eager reference runtime
