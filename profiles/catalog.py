"""Device catalog: one YAML file per device in profiles/devices/, validated strictly.

Every figure that is not null names a public source URL in `sources` (key = figure path, e.g. `peak.fp16`);
a figure we computed from public inputs (cores x GHz x FLOP/cycle, bus width x transfer rate) says how in
`notes` under the same key. Peaks are dense (no structured-sparsity doubling): FLOP/s for fp32/fp16, OP/s for int8.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from models.errors import EdgeZooError

DEVICES_DIR = Path(__file__).resolve().parent / "devices"
KINDS = ("cpu", "gpu", "npu", "soc", "host")
PRECISIONS = ("fp32", "fp16", "int8")
FIGURES = (*(f"peak.{p}" for p in PRECISIONS), "memory_bandwidth", "memory_bytes", "compute_units")
_KEYS = {"name", "title", "kind", "vendor", "peak", "memory_bandwidth", "memory_bytes", "compute_units",
         "compute_unit", "sources", "notes"}
_REQUIRED = {"name", "title", "kind", "vendor", "peak", "memory_bandwidth", "memory_bytes", "compute_units", "sources"}


class CatalogError(EdgeZooError):
    pass


class UnknownDeviceError(EdgeZooError):
    pass


@dataclass(frozen=True)
class Device:
    name: str
    title: str
    kind: str
    vendor: str
    peak: dict[str, float | None]          # FLOP/s (fp32, fp16) or OP/s (int8); None = not public
    memory_bandwidth: float | None          # bytes/s
    memory_bytes: int | None
    compute_units: int | None
    compute_unit: str = ""                  # what a unit is: "core", "SM", "Neural Engine core"
    sources: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    method: str = ""                        # host profiles: how the figures were measured

    def figure(self, key: str) -> float | None:
        """A figure by its catalog path (`peak.fp16`, `memory_bandwidth`, ...)."""
        if key.startswith("peak."):
            return self.peak.get(key.split(".", 1)[1])
        return getattr(self, key)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _bad(path: Path, problem: str, fix: str = "fix the YAML file") -> CatalogError:
    return CatalogError(f"device file {path.name}: {problem}", fix)


def _number(path: Path, key: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise _bad(path, f"{key} must be a positive number or null, not {value!r}",
                   "write numbers like 2.6e+12 (PyYAML needs the dot and the exponent sign)")
    return value


def _check_keys(path: Path, data: dict[str, Any]) -> None:
    if unknown := sorted(set(data) - _KEYS):
        raise _bad(path, f"unknown keys {unknown}", f"use only {sorted(_KEYS)}")
    if missing := sorted(_REQUIRED - set(data)):
        raise _bad(path, f"missing keys {missing}")
    if data["kind"] not in KINDS[:-1]:
        raise _bad(path, f"kind {data['kind']!r} is not one of {KINDS[:-1]}")
    peak = data["peak"]
    if not isinstance(peak, dict) or set(peak) - set(PRECISIONS):
        raise _bad(path, f"peak must map some of {PRECISIONS} to numbers, not {peak!r}")
    if path.stem != data["name"]:
        raise _bad(path, f"name {data['name']!r} differs from the file name", "name the file NAME.yaml")


def _check_sources(path: Path, dev: Device) -> None:
    for key in set(dev.sources) | set(dev.notes):
        if key not in FIGURES and key != "general":
            raise _bad(path, f"sources/notes key {key!r} is not a figure", f"use one of {FIGURES} (notes also: general)")
    for key in FIGURES:
        url = dev.sources.get(key)
        if dev.figure(key) is not None and not (isinstance(url, str) and url.startswith(("https://", "http://"))):
            raise _bad(path, f"figure {key} has no public source URL", f"add `sources: {{{key}: https://...}}`")


def parse_device(path: Path) -> Device:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise _bad(path, "is not a YAML mapping")
    _check_keys(path, data)
    dev = Device(name=data["name"], title=data["title"], kind=data["kind"], vendor=data["vendor"],
                 peak={p: _number(path, f"peak.{p}", data["peak"].get(p)) for p in PRECISIONS},
                 memory_bandwidth=_number(path, "memory_bandwidth", data["memory_bandwidth"]),
                 memory_bytes=_number(path, "memory_bytes", data["memory_bytes"]),
                 compute_units=_number(path, "compute_units", data["compute_units"]),
                 compute_unit=data.get("compute_unit", ""), sources=dict(data["sources"] or {}),
                 notes=dict(data.get("notes") or {}))
    _check_sources(path, dev)
    return dev


@lru_cache(maxsize=4)
def load_devices(directory: Path = DEVICES_DIR) -> dict[str, Device]:
    """{name: Device} for every `*.yaml` in the catalog folder; any invalid file is an error."""
    devices = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        dev = parse_device(path)
        devices[dev.name] = dev
    return devices


def get_device(name: str, extra: dict[str, Device] | None = None) -> Device:
    """A catalog device (or one of `extra`, e.g. the measured host) by name."""
    devices = {**load_devices(), **(extra or {})}
    if name not in devices:
        raise UnknownDeviceError(f"unknown device {name!r}", f"use one of: {', '.join(sorted(devices))}")
    return devices[name]
