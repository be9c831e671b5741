"""OS memory readings for the measuring child: VmHWM/VmRSS on Linux, ru_maxrss on macOS (bytes)."""

from __future__ import annotations

import resource
import sys

RESET_SLACK_KIB = 64  # after a reset VmHWM == VmRSS; a few pages of slack for pages freed since the reset


def _status_kib(*fields: str) -> dict[str, int]:
    """The named fields of /proc/self/status in KiB, from one read (so they describe one instant); {} off Linux."""
    out: dict[str, int] = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                name, _, rest = line.partition(":")
                if name in fields:
                    out[name] = int(rest.split()[0])
    except OSError:
        return {}
    return out


def reset_peak() -> bool:
    """Reset the peak-RSS watermark (Linux: write 5 to /proc/self/clear_refs). True only when the reset took:
    the write succeeded and VmHWM now reads the current VmRSS (one read of /proc/self/status, a few pages of slack).
    False where the OS has no such reset (macOS), refuses it (a locked-down container), or ignores it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    now = _status_kib("VmHWM", "VmRSS")
    return len(now) == 2 and now["VmHWM"] <= now["VmRSS"] + RESET_SLACK_KIB


def peak_label(reset: bool) -> str:
    """How a peak reading from `peak_rss` was measured, given whether `reset_peak` took."""
    if not _status_kib("VmHWM"):
        return "ru_maxrss since process start (no reset on this OS; includes load)"
    if reset:
        return "VmHWM after reset post-load"
    return "VmHWM since process start (reset failed; includes load)"


def current_rss() -> int | None:
    kib = _status_kib("VmRSS").get("VmRSS")
    return kib * 1024 if kib is not None else None


def peak_rss() -> int:
    kib = _status_kib("VmHWM").get("VmHWM")
    if kib is not None:
        return kib * 1024
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024  # bytes on macOS, KiB on Linux
