"""Host profile: measured fp32 matmul throughput and copy bandwidth of this machine, as a `Device`.

Measured once per (device fingerprint, threads) and cached in WORKSPACE/host_profile.json, so reports do not
re-run it. The matmul uses torch (the same BLAS the torch runtime uses) with threads pinned like the profiler;
the copy is a large numpy array copy, counted as read + write bytes (the STREAM "copy" convention).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from profiles.catalog import Device
from profiles.device import fingerprint

CACHE_FILE = "host_profile.json"
BENCH_VERSION = 1


def matmul_flops(threads: int = 2, n: int = 1024, seconds: float = 1.0) -> float:
    """Best-of-repeats fp32 FLOP/s of an n x n matmul (2 n^3 FLOP each) on `threads` threads."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)  # warm-up: thread pool, packing buffers
        best, start = float("inf"), time.perf_counter()
        while time.perf_counter() - start < seconds:
            t0 = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    return 2.0 * n ** 3 / best


def copy_bandwidth(mib: int = 256, repeats: int = 5) -> float:
    """Best-of-repeats bytes/s of copying a `mib` MiB float32 array (read + write counted)."""
    src = np.ones(mib * (1 << 20) // 4, dtype=np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault the pages in before timing
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * src.nbytes / best


def measure_host(threads: int = 2) -> Device:
    fp = fingerprint()
    flops, bw = matmul_flops(threads), copy_bandwidth()
    method = (f"measured: torch.mm 1024x1024 fp32 on {threads} threads (best of ~1 s), numpy copy of 256 MiB "
              "(read+write bytes, best of 5); fp16/int8 not measured")
    return Device(name="host", title=f"this machine: {fp['cpu']} x{fp['logical_cores']} ({threads} threads)",
                  kind="host", vendor="measured", peak={"fp32": flops, "fp16": None, "int8": None},
                  memory_bandwidth=bw, memory_bytes=fp.get("memory_bytes"), compute_units=threads,
                  compute_unit="thread", method=method)


def _device_from(data: dict[str, Any]) -> Device:
    return Device(**data)


def host_profile(root: Path, threads: int = 2, refresh: bool = False) -> Device:
    """The cached host profile for this machine and thread count, measuring it on first use."""
    path = Path(root) / CACHE_FILE
    key = f"{fingerprint()['id']}/threads={threads}/v{BENCH_VERSION}"
    try:
        cache = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        cache = {}
    if not refresh and key in cache:
        return _device_from(cache[key])
    dev = measure_host(threads)
    cache[key] = dev.to_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cache, indent=2))
    return dev
