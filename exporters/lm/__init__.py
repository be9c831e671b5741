"""LM exporters (OpenELM): ONNX prefill/decode graphs with an explicit KV cache, mlx-lm folders, stateful Core ML
packages (KV cache in states). The vision exporters (exporters/onnx.py, mlx.py, coreml.py) stay untouched."""
