"""Jobs, schedules and sensors for ingestion."""

import dagster as dg

from assets.ingestion import DAILY_INGESTION_ASSETS, GROUP
from pipelines.landing_cursor import new_landed_days
from pipelines.nightly import landed_nightly_schedule
from resources.warehouse import WarehouseResource

# Daily sources only: the job is partitioned by day and back-fills in one run.
ingestion_job = dg.define_asset_job(
    "ingestion_job",
    selection=dg.AssetSelection.assets(*DAILY_INGESTION_ASSETS),
    description="Ingest and validate every daily source for a day (or a range, in one run).",
)
# Master data is a full snapshot with no partitions.
master_data_job = dg.define_asset_job(
    "master_data_job",
    selection=dg.AssetSelection.groups(GROUP) - dg.AssetSelection.assets(*DAILY_INGESTION_ASSETS),
    description="Reload the accounts and users snapshots.",
)

nightly_ingestion_schedule = landed_nightly_schedule(
    ingestion_job,
    "nightly_ingestion_schedule",
    "Every night at 02:00 UTC, ingest yesterday's partition of every daily source (skips, "
    "naming the sources, while yesterday's files have not all landed).",
)

nightly_master_data_schedule = dg.ScheduleDefinition(
    name="nightly_master_data_schedule",
    job=master_data_job,
    cron_schedule="30 1 * * *",
    execution_timezone="UTC",
    description="Every night at 01:30 UTC, reload the master-data snapshots.",
)


@dg.sensor(job=ingestion_job, minimum_interval_seconds=60)
def landed_partitions_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    """Requests each newly landed day of each source (the cursor keeps the days seen per
    source, so a day whose files land late still runs)."""
    # Days already ingested (the demo, a backfill) are not run again.
    new, cursor = new_landed_days(context, warehouse)
    requests = [
        dg.RunRequest(
            run_key=f"{source}:{day}",
            partition_key=day,
            asset_selection=[dg.AssetKey(source)],
            tags={"spokesync/source": source},
        )
        for source, days in new.items()
        for day in days
    ]
    if not requests:
        return dg.SkipReason("no newly landed partitions")
    return dg.SensorResult(run_requests=requests, cursor=cursor)


JOBS = [ingestion_job, master_data_job]
SCHEDULES = [nightly_ingestion_schedule, nightly_master_data_schedule]
SENSORS = [landed_partitions_sensor]
