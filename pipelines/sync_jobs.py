"""Jobs, schedule and sensor of the HubSpot sync.

- ``sync_job``: master data, every daily source and every sync asset for a day (or, as a
  single-run backfill, a range): ingest → validate → desired state → diff → push.
- ``hubspot_push_job``: only the sync assets (desired → diff → push), e.g. after a mapping change.
- ``hubspot_shadow_job``: the same with writes off (tag ``spokesync/shadow``): the plan only.
- ``hubspot_refresh_job``: read HubSpot back into the snapshot and report drift.
- ``nightly_sync_schedule``: yesterday's partition of ``sync_job`` at 02:00 UTC (each push
  first reads what people changed in HubSpot since the last run: an incremental refresh).
- ``weekly_full_refresh_schedule``: ``hubspot_refresh_job`` on Sundays at 04:00 UTC, to
  reconcile what the incremental refresh cannot see (records deleted in HubSpot).
- ``new_partition_sync_sensor``: when a day's files land, runs that day's ingestion of the
  sources that landed plus the sync, once per day and set of sources.
"""

from __future__ import annotations

import dagster as dg

from assets.ingestion import DAILY_INGESTION_ASSETS
from assets.ingestion import GROUP as INGESTION_GROUP
from assets.sync import GROUP as SYNC_GROUP
from assets.sync import PROPERTIES_KEY, SHADOW_TAG
from pipelines.landing_cursor import new_landed_days
from pipelines.nightly import landed_nightly_schedule
from resources.warehouse import WarehouseResource
from spokesync.ingest.contract import MASTER_SOURCES

MASTER_KEYS = [dg.AssetKey(s) for s in MASTER_SOURCES]
SYNC_PARTITIONED = dg.AssetSelection.groups(SYNC_GROUP) - dg.AssetSelection.assets(
    PROPERTIES_KEY, "hubspot_snapshot_refresh"
)

sync_job = dg.define_asset_job(
    "sync_job",
    selection=dg.AssetSelection.groups(INGESTION_GROUP)
    | SYNC_PARTITIONED
    | dg.AssetSelection.assets(PROPERTIES_KEY),
    description="Ingest and validate a day (or a range, in one run), then diff and push to "
    "HubSpot once, for the last day.",
    tags={"dagster/max_retries": 1},
)
hubspot_push_job = dg.define_asset_job(
    "hubspot_push_job",
    selection=SYNC_PARTITIONED | dg.AssetSelection.assets(PROPERTIES_KEY),
    description="Desired state → diff → push, without re-ingesting.",
)
hubspot_shadow_job = dg.define_asset_job(
    "hubspot_shadow_job",
    selection=SYNC_PARTITIONED - dg.AssetSelection.key_substring("_push")
    | dg.AssetSelection.assets(PROPERTIES_KEY),
    description="Shadow run: desired state → diff → the plan (each `<obj>_changes`), and "
    "nothing sent to HubSpot (ensure-properties only reads and reports what it would create); "
    "no push runs, so no push partition is marked materialized.",
    tags={SHADOW_TAG: "true"},
)
hubspot_refresh_job = dg.define_asset_job(
    "hubspot_refresh_job",
    selection=dg.AssetSelection.assets("hubspot_snapshot_refresh"),
    description="Full refresh of the snapshot from HubSpot; reports drift.",
)

nightly_sync_schedule = landed_nightly_schedule(
    sync_job,
    "nightly_sync_schedule",
    "Every night at 02:00 UTC: yesterday's ingestion, then the push (skips, naming the "
    "sources, while yesterday's files have not all landed).",
)


@dg.sensor(job=sync_job, minimum_interval_seconds=60)
def new_partition_sync_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    """One run per newly landed day: the master data, that day's landed sources, then the push.

    The cursor holds the days seen per source, so a day whose files land late still runs;
    ``run_key`` makes a tick idempotent.
    """
    # Days already ingested (the demo, a backfill) are not run again.
    new, cursor = new_landed_days(context, warehouse)
    landed: dict[str, list[str]] = {}
    for source, days in new.items():
        for day in days:
            landed.setdefault(day, []).append(source)
    if not landed:
        return dg.SkipReason("no newly landed partitions")
    sync_keys = list(SYNC_PARTITIONED.resolve(context.repository_def.asset_graph))
    requests = [
        dg.RunRequest(
            run_key=f"{day}:{'+'.join(sources)}",
            partition_key=day,
            asset_selection=[
                *MASTER_KEYS,
                *(dg.AssetKey(s) for s in sources),
                *sync_keys,
            ],
            tags={"spokesync/sources": ",".join(sources)},
        )
        for day, sources in sorted(landed.items())
    ]
    return dg.SensorResult(run_requests=requests, cursor=cursor)


weekly_full_refresh_schedule = dg.ScheduleDefinition(
    name="weekly_full_refresh_schedule",
    job=hubspot_refresh_job,
    cron_schedule="0 4 * * 0",
    execution_timezone="UTC",
    description="Sundays 04:00 UTC: full refresh of the snapshot (reconciliation: deletions, "
    "anything the nightly incremental refresh missed).",
)

JOBS = [sync_job, hubspot_push_job, hubspot_shadow_job, hubspot_refresh_job]
SCHEDULES = [nightly_sync_schedule, weekly_full_refresh_schedule]
SENSORS = [new_partition_sync_sensor]
__all__ = ["DAILY_INGESTION_ASSETS", "JOBS", "SCHEDULES", "SENSORS"]
