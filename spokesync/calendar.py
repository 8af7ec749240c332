"""The first day of the daily partitions, so partitions line up with the data and the calendar.

Order of precedence:

1. ``SPOKESYNC_PARTITIONS_START`` (``YYYY-MM-DD``): the first day of the warehouse history. Set
   it in production so the partition set never depends on which files are still in landing.
2. The earliest day that has landing files (``$SPOKESYNC_LANDING``), so a fresh sample (which
   ends yesterday) shows every partition filled.
3. 30 days before today (UTC), the default sample's first day.

The last partition is always yesterday (UTC): a day's exports land after it ends.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping

from spokesync.ingest.contract import PARTITIONED_SOURCES
from spokesync.ingest.engine import landed_partitions
from spokesync.sample_data.generator import default_start
from spokesync.settings import Settings, SettingsError

START_VARIABLE = "SPOKESYNC_PARTITIONS_START"
DEFAULT_DAYS = 30


def partitions_start(environ: Mapping[str, str] | None = None) -> dt.date:
    e = os.environ if environ is None else environ
    raw = e.get(START_VARIABLE, "").strip()
    if raw:
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            raise SettingsError(f"{START_VARIABLE}={raw!r} is not a date (YYYY-MM-DD)") from None
    landing = Settings.from_env(dict(e)).landing
    first = [days[0] for s in PARTITIONED_SOURCES if (days := landed_partitions(s, landing))]
    if first:
        return dt.date.fromisoformat(min(first))
    return default_start(DEFAULT_DAYS)
