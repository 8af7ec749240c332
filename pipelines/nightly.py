"""Nightly schedules that run yesterday's partition once its landing files are there.

A partitioned schedule that fires whatever landed turns a late export into a failed run
("no landing files for invoices on …"). These schedules request yesterday's partition (UTC)
when every daily source has landed for it, and otherwise skip with a reason naming the sources
still missing; the new-partition sensors run the day when the files arrive, and the
``sync_latency`` check reports a day that is late against its SLA.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from resources.warehouse import WarehouseResource
from spokesync.ingest.contract import PARTITIONED_SOURCES

NIGHTLY_CRON = "0 2 * * *"


def landed_nightly_schedule(
    job: dg.UnresolvedAssetJobDefinition, name: str, description: str
) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=NIGHTLY_CRON,
        execution_timezone="UTC",
        description=description,
    )
    def _nightly(
        context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource
    ) -> dg.RunRequest | dg.SkipReason:
        now = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
        day = (now.astimezone(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
        missing = [s for s in PARTITIONED_SOURCES if day not in warehouse.landed_partitions(s)]
        if missing:
            return dg.SkipReason(
                f"no landing files for {day} yet: {', '.join(missing)} "
                f"(in {warehouse.landing_dir}); the new-partition sensor runs the day when they land"
            )
        return dg.RunRequest(run_key=f"{name}:{day}", partition_key=day)

    return _nightly
