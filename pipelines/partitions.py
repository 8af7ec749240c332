"""Partitions shared by ingestion and sync assets."""

from __future__ import annotations

import dagster as dg

# The sample generator's default first day (spokesync.sample_data.generator.GeneratorConfig).
PARTITIONS_START_DATE = "2026-01-01"

# One partition per UTC day; the last one is yesterday (a day's exports land after it ends).
daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START_DATE)
