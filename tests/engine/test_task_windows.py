"""Which usage-threshold crossings are tasks: the repository's trigger over a small warehouse
written by hand (five accounts, 2026-03-01 … 03-24 with the 5th's export missing).

A crossing counts only when every day its two 7-day counts read (the day and the 7 before it)
has a partition; a crossing more than 7 days before the newest data is history. Expected values
are worked out by hand from the rows below, not from the engine."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spokesync import warehouse
from spokesync.mapping.loader import MappingError
from spokesync.mapping.task_spec import load_task_trigger
from spokesync.task_triggers import plan_task_intents, plan_tasks

TRIGGER = Path(__file__).resolve().parents[2] / "mappings" / "tasks" / "usage_threshold.yaml"
MAR = [dt.date(2026, 3, d) for d in range(1, 25)]  # MAR[0] = Mar 1 … MAR[23] = Mar 24
MISSING = dt.date(2026, 3, 5)  # that day's usage export never landed


def day(d: int) -> dt.date:
    return dt.date(2026, 3, d)


def active(d: dt.date) -> list[tuple[str, str]]:
    """(account, user) active on day ``d``, as the product saw it."""
    n = d.day
    rows = []
    # A: the warehouse starts on Mar 1 and its users are first seen on days 1, 2, 3 (the
    # 7-day count 1, 2, 3): a window filling up, not users arriving.
    rows += [("ACC-A", u) for u, first in (("a1", 1), ("a2", 2), ("a3", 3)) if n >= first]
    # B: b1, b2 daily; b3 on the 1st, the 4th and daily from the 12th: the count reads 2 on
    # the 11th (window 5th … 11th) and 3 again on the 12th, a window that holds the missing 5th.
    rows += [("ACC-B", "b1"), ("ACC-B", "b2")]
    if n in (1, 4) or n >= 12:
        rows.append(("ACC-B", "b3"))
    # C: c1 daily, c2 and c3 join on the 15th: a real crossing, 9 days before the newest data.
    rows.append(("ACC-C", "c1"))
    if n >= 15:
        rows += [("ACC-C", "c2"), ("ACC-C", "c3")]
    # D: d1 daily, d2 and d3 join on the 20th: real and recent (its owner is unknown to HubSpot).
    rows.append(("ACC-D", "d1"))
    if n >= 20:
        rows += [("ACC-D", "d2"), ("ACC-D", "d3")]
    # E: three users daily to the 10th, a quiet week (11th … 18th), back on the 19th: the count
    # is 3 to the 16th, 0 on the 17th and 18th, 3 on the 19th.
    if n <= 10 or n >= 19:
        rows += [("ACC-E", u) for u in ("e1", "e2", "e3")]
    return rows


def build(wh: Path, days: list[dt.date]) -> None:
    for d in days:
        if d == MISSING:
            continue
        rows = active(d)
        path = warehouse.partition_path(wh, "product_usage", d.isoformat())
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            pa.table(
                {
                    "event_id": [f"EVT-{d:%m%d}-{i}" for i in range(len(rows))],
                    "account_id": [a for a, _ in rows],
                    "user_id": [u for _, u in rows],
                }
            ),
            path,
        )
    accounts = warehouse.master_path(wh, "accounts")
    accounts.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "account_id": ["ACC-A", "ACC-B", "ACC-C", "ACC-D", "ACC-E"],
                "name": ["Alpha", "Beta", "Gamma", "Delta", "Epsilon"],
                "owner_email": ["ava.owner@example.com"] * 3
                + ["nobody@example.com", "bo.owner@example.com"],
            }
        ),
        accounts,
    )
    owners = warehouse.reference_path(wh, "hubspot_owners")
    owners.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table({"owner_id": ["75000001", "75000002"],
                  "email": ["ava.owner@example.com", "bo.owner@example.com"]}),
        owners,
    )  # fmt: skip


def crossings(intents: list) -> list[tuple[str, dt.date]]:
    return sorted((i.about_external_id, i.occurred_on) for i in intents)


@pytest.fixture
def wh(tmp_path: Path) -> Path:
    build(tmp_path / "warehouse", MAR)
    return tmp_path / "warehouse"


def test_a_first_sync_over_history_creates_only_real_recent_crossings(wh: Path) -> None:
    trigger = load_task_trigger(TRIGGER)
    plan = plan_tasks(wh, trigger, day(24), since=day(1))
    assert plan.newest == day(24)
    # Real and within 7 days of the 24th (after the 17th): D on the 20th, E back on the 19th.
    assert crossings(plan.intents) == [("ACC-D", day(20)), ("ACC-E", day(19))]
    # Windows the warehouse does not hold whole: the first week (A on the 3rd; B and E on the
    # 1st, a count that starts at 3) and B's dip next to the missing 5th.
    assert crossings(plan.incomplete) == [
        ("ACC-A", day(3)),
        ("ACC-B", day(1)),
        ("ACC-B", day(12)),
        ("ACC-E", day(1)),
    ]
    assert crossings(plan.stale) == [("ACC-C", day(15))]  # real, but 9 days old
    # The days missing from those windows: the 7 before the warehouse's first day, the 5th.
    assert plan.missing_days == [dt.date(2026, 2, d) for d in range(22, 29)] + [MISSING]

    by_account = {i.about_external_id: i for i in plan.intents}
    delta = by_account["ACC-D"].properties
    assert delta["hubspot_owner_id"] == "75000001"  # nobody@ is no owner: the fallback, Ava
    assert delta["hs_task_subject"] == "Usage threshold reached: Delta (3 active users this week)"
    assert delta["hs_timestamp"] == "2026-03-23T09:00:00.000Z"  # 3 days later, 09:00 UTC
    assert by_account["ACC-E"].properties["hubspot_owner_id"] == "75000002"


def test_the_nightly_run_then_and_now_and_a_backfill_agree(tmp_path: Path, wh: Path) -> None:
    trigger = load_task_trigger(TRIGGER)
    # The nightly run of the 24th looks back 7 days: the same two tasks, nothing else found.
    nightly = plan_tasks(wh, trigger, day(24))
    assert crossings(nightly.intents) == [("ACC-D", day(20)), ("ACC-E", day(19))]
    assert (nightly.incomplete, nightly.stale) == ([], [])
    # Every nightly run of the range, today, creates exactly what the range run creates.
    daily = {i.event_id for d in MAR for i in plan_task_intents(wh, trigger, d)}
    ranged = {i.event_id for i in plan_task_intents(wh, trigger, day(24), since=day(1))}
    assert daily == ranged
    # A backfill replaying the 15th today: C's crossing is history now.
    replay = plan_tasks(wh, trigger, day(15))
    assert (crossings(replay.intents), crossings(replay.stale)) == ([], [("ACC-C", day(15))])
    assert crossings(replay.incomplete) == [("ACC-B", day(12))]

    # The nightly run of the 15th, on the night (the warehouse ended on the 15th), created C's.
    then = tmp_path / "then"
    build(then, [d for d in MAR if d <= day(15)])
    on_the_night = plan_tasks(then, trigger, day(15))
    assert on_the_night.newest == day(15)
    assert crossings(on_the_night.intents) == [("ACC-C", day(15))]
    assert crossings(on_the_night.incomplete) == [("ACC-B", day(12))]


def test_the_late_export_makes_the_gap_crossing_real_or_not(wh: Path) -> None:
    """When the 5th lands late, B's windows are whole: b3 was active on the 5th (the count
    never fell), so the 12th is no crossing at all; the warm-up stays incomplete."""
    trigger = load_task_trigger(TRIGGER)
    path = warehouse.partition_path(wh, "product_usage", MISSING.isoformat())
    path.parent.mkdir(parents=True)
    rows = [*active(MISSING), ("ACC-B", "b3")]
    pq.write_table(
        pa.table({"event_id": [f"L{i}" for i in range(len(rows))],
                  "account_id": [a for a, _ in rows], "user_id": [u for _, u in rows]}),
        path,
    )  # fmt: skip
    plan = plan_tasks(wh, trigger, day(24), since=day(1))
    assert crossings(plan.incomplete) == [("ACC-A", day(3)), ("ACC-B", day(1)), ("ACC-E", day(1))]
    assert plan.missing_days == [dt.date(2026, 2, d) for d in range(22, 29)]
    assert crossings(plan.intents) == [("ACC-D", day(20)), ("ACC-E", day(19))]


def test_trigger_settings_are_checked(tmp_path: Path) -> None:
    text = TRIGGER.read_text()
    bad_table = tmp_path / "bad_table.yaml"
    bad_table.write_text(text.replace("table: product_usage", "table: accounts"))
    with pytest.raises(MappingError, match="complete_window.table: 'accounts' is not a daily"):
        load_task_trigger(bad_table)
    in_params = tmp_path / "in_params.yaml"
    in_params.write_text(text.replace("  threshold: 3", "  threshold: 3\n  lookback_days: 3"))
    with pytest.raises(MappingError, match="'lookback_days' is a top-level setting"):
        load_task_trigger(in_params)
    no_day = tmp_path / "no_day.yaml"
    no_day.write_text(text.replace("occurred_column: crossed_on\n", ""))
    with pytest.raises(MappingError, match="complete_window needs occurred_column"):
        load_task_trigger(no_day)
