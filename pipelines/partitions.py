"""Partitions shared by ingestion and sync assets."""

from __future__ import annotations

import dagster as dg

from spokesync.calendar import partitions_start

# First day: $SPOKESYNC_PARTITIONS_START, else the first landed day, else 30 days ago (see
# spokesync.calendar). One partition per UTC day; the last one is yesterday (a day's exports
# land after it ends), which is also the sample data's last day.
PARTITIONS_START_DATE = partitions_start().isoformat()
daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START_DATE)
