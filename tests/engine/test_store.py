"""State store: write-through, dead-letter lifecycle, full refresh drift, runs and plans."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb

from spokesync.changes import BatchLog, ConfirmedWrite, DeadLetter
from spokesync.mapping import MappingSpec
from spokesync.state import StateStore
from tests.engine.conftest import AS_OF, Warehouse, account
from tests.engine.helpers import plan

D1 = dt.date(2026, 1, 1)
D2 = dt.date(2026, 1, 2)


def _write(ext: str, hid: str, props: dict[str, str], as_of: dt.date = D1) -> ConfirmedWrite:
    return ConfirmedWrite("companies", ext, hid, props, as_of, created=False)


def _rows(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_write_through_keeps_exactly_what_hubspot_confirmed(
    state_db: Path, accounts_mapping: MappingSpec
) -> None:
    with StateStore(state_db, [accounts_mapping]) as store:
        store.record_confirmed(
            [
                _write("A1", "11", {"name": " Acme ", "numberofemployees": "10.50"}),
                _write("A2", "12", {"name": "Beta", "hs_lastmodifieddate": "2026-01-01"}),
            ],
            "run-1",
        )
        # A later confirmation replaces only the properties it names, and moves the HubSpot id.
        store.record_confirmed([_write("A1", "99", {"numberofemployees": "11"}, D2)], "run-2")
    assert _rows(
        state_db,
        "SELECT external_id, hubspot_id, property, value, as_of, origin, run_id FROM snapshot "
        "ORDER BY external_id, property",
    ) == [
        ("A1", "99", "name", "Acme", D1, "pushed", "run-1"),
        ("A1", "99", "numberofemployees", "11", D2, "pushed", "run-2"),
        ("A2", "12", "name", "Beta", D1, "pushed", "run-1"),  # unmanaged property not kept
    ]


def test_dead_letter_lifecycle(state_db: Path, accounts_mapping: MappingSpec) -> None:
    letter = DeadLetter(
        "companies",
        "A1",
        {"id": "A1", "idProperty": "spokesync_account_id", "properties": {"industry": "BAD"}},
        "VALIDATION_ERROR",
        "BAD was not one of the allowed options",
        "corr-1",
        attempts=1,
        as_of=D1,
    )
    store = StateStore(state_db, [accounts_mapping])
    store.record_dead_letters([letter], "run-1")
    store.record_dead_letters([letter], "run-2")  # same record fails again: bumped, not duplicated
    (open_letter,) = store.open_dead_letters("companies")
    assert (
        open_letter.external_id,
        open_letter.attempts,
        open_letter.state,
        open_letter.run_id,
    ) == (
        "A1",
        2,
        "open",
        "run-2",
    )
    assert open_letter.payload["properties"] == {"industry": "BAD"}
    assert open_letter.first_seen <= open_letter.last_seen
    (change,) = store.dead_letter_changes("companies")
    assert (change.external_id, change.kind, change.properties, change.as_of) == (
        "A1",
        "create",
        {"industry": "BAD"},
        D1,
    )
    assert store.mark_replayed([open_letter.letter_id]) == 1
    assert store.open_dead_letters("companies") == []
    assert store.mark_replayed([open_letter.letter_id]) == 0
    # Replayed and failed again → open again with more attempts; then a success resolves it.
    store.record_dead_letters([letter], "run-3")
    assert [d.attempts for d in store.open_dead_letters()] == [3]
    store.record_confirmed([_write("A1", "11", {"industry": "RETAIL"})], "run-4")
    assert store.open_dead_letters() == []
    assert _rows(state_db, "SELECT external_id, state, attempts FROM dead_letter") == [
        ("A1", "resolved", 3)
    ]


def test_sync_log_and_runs(state_db: Path) -> None:
    store = StateStore(state_db)
    store.start_run("run-1", "companies", "abc123", shadow=False, as_of=D1)
    store.record_batch(
        BatchLog(
            run_id="run-1",
            batch_seq=1,
            request_id="run-1-1",
            object_type="companies",
            endpoint="/crm/v3/objects/companies/batch/upsert",
            status_code=207,
            correlation_id="c-1",
            latency_ms=12.5,
            records_sent=100,
            records_ok=99,
            records_failed=1,
        )
    )
    store.finish_run("run-1", "companies", "succeeded", {"records_written": 99})
    assert _rows(
        state_db, "SELECT run_id, batch_seq, status_code, records_ok, records_failed FROM sync_log"
    ) == [("run-1", 1, 207, 99, 1)]
    ((status, counts, shadow),) = _rows(state_db, "SELECT status, counts, shadow FROM sync_runs")
    assert (status, json.loads(counts), shadow) == ("succeeded", {"records_written": 99}, False)


def test_full_refresh_reports_drift_and_keeps_as_of(
    state_db: Path, accounts_mapping: MappingSpec
) -> None:
    store = StateStore(state_db, [accounts_mapping])
    store.record_confirmed(
        [
            _write("A1", "11", {"name": "Acme", "numberofemployees": "10"}, D2),
            _write("A2", "12", {"name": "Beta"}),
            _write("A3", "13", {"name": "Gone"}),
        ],
        "run-1",
    )
    hubspot = [
        {
            "id": "11",
            "properties": {
                "spokesync_account_id": "A1",
                "name": "Acme Corp",
                "numberofemployees": "10.0",
            },
        },
        {"id": "12", "properties": {"spokesync_account_id": "A2", "name": "Beta"}},
        {"id": "14", "properties": {"spokesync_account_id": "A4", "name": "Made by hand"}},
        {"id": "15", "properties": {"name": "Not ours"}},
    ]
    report = store.replace_snapshot_from_hubspot(
        "companies",
        "spokesync_account_id",
        iter(hubspot),
        accounts_mapping.managed_properties,
        accounts_mapping.property_types,
        run_id="refresh-1",
    )
    assert report.as_metadata() == {
        "object_type": "companies",
        "records_read": 4,
        "records_without_id": 1,
        "values_drifted": 1,
        "records_drifted": 1,
        "records_missing": 1,
    }
    assert [
        (s.external_id, s.property, s.snapshot_value, s.hubspot_value) for s in report.samples
    ] == [("A1", "name", "Acme", "Acme Corp")]
    values = store.snapshot_values("companies")
    assert sorted(values) == ["A1", "A2", "A4"]
    assert values["A1"]["name"] == "Acme Corp" and values["A1"]["numberofemployees"] == "10"
    assert values["A4"]["country"] is None  # every managed property is stored, empty as NULL
    assert _rows(
        state_db,
        "SELECT property, as_of, origin, hubspot_id FROM snapshot WHERE external_id = 'A1' "
        "AND property IN ('name', 'country') ORDER BY property",
    ) == [("country", None, "hubspot", "11"), ("name", D2, "hubspot", "11")]
    assert "1 values drifted on 1 records" in report.to_markdown()


def test_shadow_plan_is_recorded_with_markdown(
    wh: Warehouse, state_db: Path, accounts_mapping: MappingSpec
) -> None:
    wh.write("accounts", [account(1), account(2)])
    p, _ = plan(state_db, wh.root, accounts_mapping, AS_OF)
    store = StateStore(state_db)
    store.start_run("shadow-1", "companies", accounts_mapping.version, shadow=True, as_of=AS_OF)
    assert store.record_planned_changes("shadow-1", "companies", p.planned_rows()) == 14
    # Planning the same object again in the same run replaces its plan.
    assert store.record_planned_changes("shadow-1", "companies", p.planned_rows()) == 14
    md = p.summary_markdown(limit=3)
    p.close()
    rows = store.planned_changes()  # latest shadow run
    assert len(rows) == 14 and {r[0] for r in rows} == {"shadow-1"}
    assert rows[0][1:] == ("companies", "A0001", None, "country", None, "DE", "create", AS_OF)
    assert "records to write: 2 (2 new, 0 updated)" in md
    assert md.count("| A0001 | create |") == 3
    assert store.snapshot_count("companies") == 0  # shadow: nothing confirmed, nothing stored


def test_a_store_locked_by_another_process_is_a_clear_error(
    state_db: Path, accounts_mapping: MappingSpec, wh: Warehouse
) -> None:
    import subprocess
    import sys

    import pytest

    from spokesync.diff import plan_changes
    from spokesync.state import StateStoreBusy

    StateStore(state_db).ensure_schema()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
            "time.sleep(60)",
            str(state_db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(StateStoreBusy, match=r"test.duckdb cannot be opened"):
            StateStore(state_db).record_batch(None)  # type: ignore[arg-type]
        wh.write("accounts", [account(1)])
        with pytest.raises(StateStoreBusy, match=r"test.duckdb cannot be"):
            plan_changes(state_db, wh.root, accounts_mapping, AS_OF)
    finally:
        holder.kill()
        holder.wait()


def _fingerprints_match(path: Path) -> tuple[list[tuple], list[tuple]]:
    stored = _rows(
        path, "SELECT object_type, external_id, hubspot_id, fp FROM snapshot_record ORDER BY ALL"
    )
    recomputed = _rows(
        path,
        "SELECT object_type, external_id, any_value(hubspot_id), "
        "coalesce(bit_xor(hash(property, value)) FILTER (WHERE value IS NOT NULL), 0::UBIGINT) "
        "FROM snapshot GROUP BY ALL ORDER BY ALL",
    )
    return stored, recomputed


def test_record_fingerprints_follow_every_write_and_old_stores_are_migrated(
    state_db: Path, accounts_mapping: MappingSpec
) -> None:
    store = StateStore(state_db, [accounts_mapping])
    store.record_confirmed(
        [_write("A1", "11", {"name": "Acme", "country": "DE"}), _write("A2", "12", {"name": "B"})],
        "run-1",
    )
    store.record_confirmed([_write("A1", "21", {"country": ""})], "run-2")  # cleared, new id
    stored, recomputed = _fingerprints_match(state_db)
    assert stored == recomputed and [r[1:3] for r in stored] == [("A1", "21"), ("A2", "12")]
    store.replace_snapshot_from_hubspot(
        "companies",
        "spokesync_account_id",
        [{"id": "31", "properties": {"spokesync_account_id": "A3", "name": "C"}}],
        accounts_mapping.managed_properties,
        accounts_mapping.property_types,
    )
    stored, recomputed = _fingerprints_match(state_db)
    assert stored == recomputed and [r[1] for r in stored] == ["A3"]
    # A store written before fingerprints existed gets them built when first opened.
    con = duckdb.connect(str(state_db))
    con.execute("DROP TABLE snapshot_record")
    con.close()
    assert StateStore(state_db).snapshot_count() == len(accounts_mapping.managed_properties)
    stored, recomputed = _fingerprints_match(state_db)
    assert stored == recomputed and len(stored) == 1
