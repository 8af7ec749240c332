"""Usage-threshold crossings over a backfill range: a range run (``since`` … ``as_of``) finds
exactly the crossings the daily runs of those days find, including ones older than the
trigger's 7-day lookback; the sample's quiet weeks make crossings after the first week."""

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
from spokesync.task_triggers import plan_task_intents

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

    daily = {}
    for day in days:
        d = dt.date.fromisoformat(day)
        daily |= {i.event_id: i.source_row for i in plan_task_intents(wh, trigger, d)}
    ranged = {i.event_id: i.source_row for i in plan_task_intents(wh, trigger, last, START)}
    nightly_last = plan_task_intents(wh, trigger, last)

    assert ranged == daily
    crossed = sorted({r["crossed_on"] for r in ranged.values()})
    # The warm-up (day 2, the 7-day window filling) and, after the first week, accounts coming
    # back from their quiet week; only the last 7 days are within one nightly run's lookback.
    assert crossed[0] == "2026-03-02"
    assert any(day > "2026-03-08" for day in crossed)
    assert any(r["crossed_on"] < "2026-03-16" for r in ranged.values())
    assert {i.source_row["crossed_on"] for i in nightly_last} <= {
        d for d in crossed if d >= "2026-03-16"
    }
    assert len(nightly_last) < len(ranged)
    shutil.rmtree(landing)
