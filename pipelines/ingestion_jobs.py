"""Jobs, schedules and sensors for ingestion."""

import json

import dagster as dg

from assets.ingestion import DAILY_INGESTION_ASSETS, GROUP
from pipelines.partitions import daily_partitions
from resources.warehouse import WarehouseResource
from spokesync.ingest.contract import PARTITIONED_SOURCES

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

nightly_ingestion_schedule = dg.build_schedule_from_partitioned_job(
    ingestion_job,
    name="nightly_ingestion_schedule",
    hour_of_day=2,
    minute_of_hour=0,
    description="Every night at 02:00 UTC, ingest yesterday's partition of every daily source.",
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
    """Requests each newly landed day of each source (cursor: per-source high-water mark)."""
    marks: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    valid_days = set(daily_partitions.get_partition_keys())
    requests: list[dg.RunRequest] = []
    for source in PARTITIONED_SOURCES:
        mark = marks.get(source, "")
        new = [d for d in warehouse.landed_partitions(source) if d > mark and d in valid_days]
        for day in new:
            requests.append(
                dg.RunRequest(
                    run_key=f"{source}:{day}",
                    partition_key=day,
                    asset_selection=[dg.AssetKey(source)],
                    tags={"spokesync/source": source},
                )
            )
        if new:
            marks[source] = new[-1]
    if not requests:
        return dg.SkipReason("no newly landed partitions")
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(marks, sort_keys=True))


JOBS = [ingestion_job, master_data_job]
SCHEDULES = [nightly_ingestion_schedule, nightly_master_data_schedule]
SENSORS = [landed_partitions_sensor]
