"""Device fingerprint and environment for records (standard library only)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import sys
from functools import lru_cache
from typing import Any


def _cpu_model() -> str:
    if sys.platform == "darwin":
        import subprocess

        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                  timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return platform.processor()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None


@lru_cache(maxsize=1)
def fingerprint() -> dict[str, Any]:
    info = {"system": platform.system(), "release": platform.release(), "machine": platform.machine(),
            "cpu": _cpu_model(), "logical_cores": os.cpu_count(), "memory_bytes": _memory_bytes()}
    info["id"] = hashlib.sha256(repr(sorted(info.items())).encode()).hexdigest()[:12]
    info["name"] = f"host:{info['cpu']} x{info['logical_cores']}"
    return info


def environment(extra_modules: tuple[str, ...] = ()) -> dict[str, Any]:
    versions = {"python": platform.python_version()}
    for mod in ("numpy", *extra_modules):
        try:
            versions[mod] = importlib.metadata.version(mod)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions
