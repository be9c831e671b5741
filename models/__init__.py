"""Architectures and their paper cards. Importing this package registers every model."""

from models.registry import PaperCard, ModelSpec, REGISTRY, get, build, names, register  # noqa: F401
from models import resnet, mobilenetv2, convmixer  # noqa: F401  (registration side effects)
