"""The exit codes of every ``spokesync`` command, in one place (documented in docs/runbooks.md).

``0`` means *everything is in step*: nothing was dead-lettered, nothing was held back, no
record was dropped before the push (quarantined at ingest, or rejected by the plan). Every
other outcome has its own code, so a scheduler (cron, CI, an on-call page) can tell "fix the
data" from "wait for tomorrow's API budget" from "fix the token" without reading the log.

When one run has several outcomes (one mapping dead-lettered records, another ran out of daily
budget), the most serious one is returned: :func:`worst` orders them by :data:`SEVERITY`.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    """What a ``spokesync`` process tells its caller (meanings in :data:`MEANING`)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    DEAD_LETTERED = 3
    DAILY_BUDGET = 4
    GATE_BLOCKED = 5
    AUTH = 6
    BUSY = 7
    STORAGE = 8
    DROPPED = 9


MEANING: dict[ExitCode, str] = {
    ExitCode.OK: "everything is in step: every planned change confirmed (or nothing to do)",
    ExitCode.FAILED: "an unexpected error (a bug, or a HubSpot answer spokesync cannot use)",
    ExitCode.USAGE: "bad command line, setting, mapping file or landing files: fix what the "
    "message names and run again",
    ExitCode.DEAD_LETTERED: "the run finished but records are dead letters (rejected by HubSpot "
    "or out of retries): see `spokesync state dead-letters`",
    ExitCode.DAILY_BUDGET: "the daily API budget is spent: what was not sent goes on the next run",
    ExitCode.GATE_BLOCKED: "a quarantine gate held back the push of a mapping (bad source data)",
    ExitCode.AUTH: "HubSpot refused the token (401) or it lacks scopes (403)",
    ExitCode.BUSY: "the state DB is locked by another spokesync process: run again later",
    ExitCode.STORAGE: "a file spokesync must write cannot be written (disk full, read-only, "
    "no permission)",
    ExitCode.DROPPED: "the run finished but records were dropped before the push (source rows "
    "quarantined at ingest, or records the plan rejected): see `spokesync state quarantine` "
    "and `spokesync state rejected`",
}

SEVERITY: tuple[ExitCode, ...] = (
    ExitCode.FAILED,
    ExitCode.USAGE,
    ExitCode.AUTH,
    ExitCode.STORAGE,
    ExitCode.BUSY,
    ExitCode.GATE_BLOCKED,
    ExitCode.DAILY_BUDGET,
    ExitCode.DEAD_LETTERED,
    ExitCode.DROPPED,
    ExitCode.OK,
)
"""Most serious first: what a person must fix before anything else can work comes first."""


def worst(codes: Iterable[ExitCode | int]) -> ExitCode:
    """The most serious of ``codes`` (``OK`` for none)."""
    present = {ExitCode(c) for c in codes}
    return next((c for c in SEVERITY if c in present), ExitCode.OK)


def describe() -> str:
    """The codes as lines ``  N  name  meaning`` (for ``spokesync --help``)."""
    return "\n".join(f"  {int(c)}  {c.name.lower():<14}{MEANING[c]}" for c in ExitCode)
