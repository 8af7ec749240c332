"""This process's memory, for the per-stage figures a sync records (``stage_*_rss_mb``).

Linux reads ``/proc/self/status`` (``VmRSS`` now, ``VmHWM`` the peak so far); elsewhere the
peak comes from ``getrusage`` and the current figure is unknown (``None``).
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

_STATUS = Path("/proc/self/status")


def _status_mb(key: str) -> float | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_mb() -> float | None:
    """Resident memory now, in MiB (None where the platform does not say)."""
    return _status_mb("VmRSS:")


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MiB."""
    peak = _status_mb("VmHWM:")
    if peak is not None:
        return peak
    raw = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return raw / (1024 * 1024) if sys.platform == "darwin" else raw / 1024  # bytes vs kB
