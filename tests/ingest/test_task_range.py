"""Usage-threshold crossings over a backfill range: a range run (``since`` … ``as_of``) finds
exactly the crossings the daily runs of those days find, including ones older than the
trigger's 7-day lookback, and creates the same tasks they create (only the last 7 days' real
crossings); the sample's quiet weeks make crossings after the first week."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from spokesync import warehouse
from spokesync.ingest.engine import ingest_master, ingest_partition, landed_partitions
from spokesync.mapping.task_spec import load_task_trigger
from spokesync.sample_data.generator import GeneratorConfig, generate
from spokesync.task_triggers import TaskPlan, plan_tasks

TRIGGER = Path(__file__).resolve().parents[2] / "mappings" / "tasks" / "usage_threshold.yaml"
START = dt.date(2026, 3, 1)


def test_a_range_run_finds_what_the_daily_runs_find(tmp_path: Path) -> None:
    landing, wh = tmp_path / "landing", tmp_path / "warehouse"
    generate(GeneratorConfig(accounts=150, days=22, seed=4, start=START), landing)
    for source in ("accounts", "users"):
        ingest_master(source, landing, wh, "test")
    days = landed_partitions("product_usage", landing)
    for day in days:
        ingest_partition("product_usage", day, landing, wh, "test")
    owners = warehouse.reference_path(wh, "hubspot_owners")
    owners.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table({"owner_id": ["1"], "email": ["ava.owner@example.com"], "first_name": ["Ava"],
                  "last_name": ["Owner"]}),
        owners,
    )  # fmt: skip
    trigger = load_task_trigger(TRIGGER)
    last = dt.date.fromisoformat(days[-1])

    def found(plan: TaskPlan) -> dict[str, dict]:
        return {i.event_id: i.source_row for i in [*plan.intents, *plan.incomplete, *plan.stale]}

    daily, daily_found = {}, {}
    for day in days:
        plan = plan_tasks(wh, trigger, dt.date.fromisoformat(day))
        daily |= {i.event_id: i.source_row for i in plan.intents}
        daily_found |= found(plan)
    ranged_plan = plan_tasks(wh, trigger, last, START)
    ranged = {i.event_id: i.source_row for i in ranged_plan.intents}
    nightly_last = plan_tasks(wh, trigger, last)

    # The range finds every crossing the daily runs find, and creates the same tasks.
    assert found(ranged_plan) == daily_found
    assert ranged == daily
    assert ranged == {i.event_id: i.source_row for i in nightly_last.intents}
    # The first week's crossings are the 7-day window filling up (windows that start before
    # the data): never tasks. After it, accounts coming back from their quiet week cross
    # again; those more than 7 days before the newest day (Mar 22) are history.
    incomplete = {i.source_row["crossed_on"] for i in ranged_plan.incomplete}
    stale = {i.source_row["crossed_on"] for i in ranged_plan.stale}
    created = {r["crossed_on"] for r in ranged.values()}
    assert incomplete and max(incomplete) < "2026-03-08"
    assert stale and min(stale) >= "2026-03-08" and max(stale) <= "2026-03-15"
    assert created and min(created) >= "2026-03-16"
    shutil.rmtree(landing)
