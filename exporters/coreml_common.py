"""What every Core ML module shares (the exporters, and profiles.runtimes.coreml_rt): coremltools imported with its
import-time noise silenced, its converter output captured, and a model input/output description as plain data."""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import warnings
from typing import Any


def load_coremltools():
    """coremltools, imported with its import-time warnings (unsupported sklearn/torch versions, missing
    libcoremlpython off macOS) silenced: they are true on every Linux machine and say nothing about this export."""
    log = logging.getLogger("coremltools")
    if "coremltools" not in sys.modules:
        level = log.level
        log.setLevel(logging.ERROR)
        try:
            import coremltools  # noqa: F401
        finally:
            log.setLevel(level)
    import coremltools as ct

    return ct


class Capture(logging.Handler):
    """coremltools' warnings, each once, for the export details."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage().strip()
        if msg and msg not in self.messages:
            self.messages.append(msg)


@contextlib.contextmanager
def quiet(capture: Capture):
    """Hide coremltools' tqdm progress bars (stderr) and keep its warnings for the export details."""
    log = logging.getLogger("coremltools")
    log.addHandler(capture)
    propagate, log.propagate = log.propagate, False
    try:
        with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            # coremltools' own deprecations and torch pytree FutureWarnings it triggers: not this export's concern
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        log.removeHandler(capture)
        log.propagate = propagate


_ARRAY_DTYPES = {65568: "float32", 65552: "float16", 65600: "float64", 131104: "int32", 131080: "int8"}


def feature(f) -> dict[str, Any]:
    """{name, shape (None = flexible), dtype} of a model input/output description."""
    arr = f.type.multiArrayType if f.type.WhichOneof("Type") == "multiArrayType" else None
    if arr is None:
        return {"name": f.name, "shape": None, "dtype": f.type.WhichOneof("Type")}
    shape: list[int | None] = [int(s) for s in arr.shape]
    ranges = arr.shapeRange.sizeRanges if arr.WhichOneof("ShapeFlexibility") == "shapeRange" else []
    for i, r in enumerate(ranges):
        if i < len(shape) and r.lowerBound != r.upperBound:
            shape[i] = None
    enumerated = arr.enumeratedShapes.shapes if arr.WhichOneof("ShapeFlexibility") == "enumeratedShapes" else []
    if shape and len({tuple(s.shape)[:1] for s in enumerated}) > 1:  # batch among the enumerated dims
        shape[0] = None
    return {"name": f.name, "shape": shape or None, "dtype": _ARRAY_DTYPES.get(arr.dataType, str(arr.dataType))}
