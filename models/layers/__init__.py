"""Blocks shared by several architectures."""

from models.layers.conv import ConvBNAct  # noqa: F401
