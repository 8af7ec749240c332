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
