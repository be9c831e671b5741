"""Exporters: checkpoint -> compressed artifact (ONNX, Core ML, MLX) with a manifest and a verification result."""

FORMATS = ("onnx", "coreml", "mlx", "torch")  # torch: a safetensors folder for the eager reference runtime
