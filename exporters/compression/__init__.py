"""Compression: spec parsing, torch-level `compress_`, and honest size accounting."""

from exporters.compression.spec import CompressionSpec, parse_spec, SUPPORTED  # noqa: F401
from exporters.compression.torch_level import compress_  # noqa: F401
