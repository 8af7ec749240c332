"""The machine a benchmark ran on, printed with its figures."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe() -> str:
    """``nproc=2 cpu=AMD EPYC python=3.11.7``"""
    return f"nproc={os.cpu_count()} cpu={cpu_model()} python={platform.python_version()}"


def status_mb(pid: int | str, field: str = "VmHWM") -> float:
    """A memory field of ``/proc/PID/status`` in MB: ``VmHWM`` is the process's own peak RSS
    (unlike ``ru_maxrss``, which Linux carries across fork + exec from the parent)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")
