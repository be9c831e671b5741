"""Compression: spec parsing, torch-level `compress_`, and honest size accounting. Round-to-nearest has one
implementation, models/layers/quant.py (re-exported here), so that models/ never imports exporters/."""

from exporters.compression.spec import CompressionSpec, parse_spec, SUPPORTED, lm_name  # noqa: F401
from exporters.compression.torch_level import compress_  # noqa: F401
from models.layers.quant import Quantized, fake_quant, rtn, rtn_, rtn_groupwise, rtn_quantize  # noqa: F401
