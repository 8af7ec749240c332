"""Planning inside the open state store's DuckDB instance (``plan_changes(..., store=…)``):
the same plan as through a read-only attach, while the store is being written, within the
memory budget."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pyarrow as pa
import pytest

from spokesync import warehouse
from spokesync.changes import ConfirmedWrite
from spokesync.diff import ChangePlan, plan_changes
from spokesync.mapping import MappingSpec
from spokesync.state import StateStore
from spokesync.state.store import StateStoreBusy
from tests.engine.conftest import AS_OF, Warehouse, account
from tests.engine.helpers import sync

NEXT_DAY = AS_OF + dt.timedelta(days=1)


def _rows(p: ChangePlan) -> list[dict[str, object]]:
    table = p.planned_rows().read_all()
    return sorted(table.to_pylist(), key=lambda r: (r["external_id"], r["property"]))


def _counts(p: ChangePlan) -> tuple[int, ...]:
    return (
        p.records_desired,
        p.records_changed,
        p.records_new,
        p.fields_changed,
        p.records_compared,
    )


def _contact_write(i: int) -> ConfirmedWrite:
    return ConfirmedWrite(
        object_type="contacts",
        external_id=f"U{i}",
        hubspot_id=f"c{i}",
        properties={"email": f"u{i}@example.com"},
        as_of=AS_OF,
        created=True,
    )


def _prepare(wh: Warehouse, state_db: Path, mapping: MappingSpec) -> None:
    """Accounts 1–3 in HubSpot as of AS_OF; the next day account 2 has 25 people and
    accounts 4 and 5 are new."""
    wh.write("accounts", [account(i) for i in (1, 2, 3)])
    sync(state_db, wh.root, mapping, AS_OF)
    wh.write(
        "accounts",
        [account(1), account(2, employee_count=25), account(3), account(4), account(5)],
    )


def test_a_plan_in_the_open_store_equals_the_attached_plan(
    wh: Warehouse, state_db: Path, accounts_mapping: MappingSpec
) -> None:
    _prepare(wh, state_db, accounts_mapping)
    with plan_changes(state_db, wh.root, accounts_mapping, NEXT_DAY) as attached:
        expected_rows, expected = _rows(attached), _counts(attached)
    with (
        StateStore(state_db) as store,
        plan_changes(state_db, wh.root, accounts_mapping, NEXT_DAY, store=store) as hosted,
    ):
        # by hand: 5 desired; 4, 5 new (7 fields each) and 2's head count: 3 records, 15
        # fields; 3 compared field by field (2 changed, 4 and 5 absent from the snapshot)
        assert _counts(hosted) == expected == (5, 3, 2, 15, 3)
        assert _rows(hosted) == expected_rows
        assert [
            (r["external_id"], r["old_value"], r["new_value"])
            for r in expected_rows
            if r["property"] == "numberofemployees"
        ] == [("A0002", "20", "25"), ("A0004", None, "40"), ("A0005", None, "50")]
        changes = [c for batch in hosted.batches(100) for c in batch]
        assert [(c.external_id, c.kind) for c in changes] == [
            ("A0002", "update"),
            ("A0004", "create"),
            ("A0005", "create"),
        ]
        assert [c.properties for c in changes][0] == {"numberofemployees": "25"}


def test_the_store_can_be_written_while_a_hosted_plan_is_made_and_read(
    wh: Warehouse, state_db: Path, accounts_mapping: MappingSpec
) -> None:
    """The obstacle this mode exists for: while the store is open for writing, a read-only
    attach of its file fails; the hosted plan does not, and another object's writes commit
    meanwhile (a writer thread, as during a push)."""
    _prepare(wh, state_db, accounts_mapping)
    with StateStore(state_db) as store:
        with pytest.raises(StateStoreBusy):
            plan_changes(state_db, wh.root, accounts_mapping, NEXT_DAY)
        with store.writer() as sink:
            done = threading.Event()

            def write_contacts() -> None:
                for i in range(50):
                    sink.record_confirmed([_contact_write(i)], "run-contacts")
                done.set()

            writer = threading.Thread(target=write_contacts)
            writer.start()
            with plan_changes(state_db, wh.root, accounts_mapping, NEXT_DAY, store=store) as p:
                writer.join()
                sink.flush()
                assert _counts(p) == (5, 3, 2, 15, 3)
                assert [c.external_id for b in p.batches(2) for c in b] == [
                    "A0002",
                    "A0004",
                    "A0005",
                ]
        assert done.is_set()
        assert store.snapshot_count("contacts") == 50
        assert store.snapshot_count("companies") == 21  # 3 records × 7 properties


def _limit_mib(store: StateStore) -> float:
    with store.connection.connection() as con:
        text = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    value, unit = str(text).split()
    return float(value) * {"MiB": 1, "GiB": 1024}[unit]


def _attached(store: StateStore) -> list[str]:
    with store.connection.connection() as con:
        rows = con.execute("SELECT database_name FROM duckdb_databases() ORDER BY 1").fetchall()
    return [r[0] for r in rows if str(r[0]).startswith("spokesync_plan_")]


def test_a_hosted_plan_has_the_whole_budget_then_gives_it_back(
    wh: Warehouse,
    state_db: Path,
    accounts_mapping: MappingSpec,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SPOKESYNC_MEMORY_LIMIT=300MB: the store alone has a third (100 MB = 95.3 MiB); while a
    plan lives in its instance the instance has the working share (200 MB = 190.7 MiB), also
    for connections opened meanwhile (a refresh's); closing the plan detaches its database and
    gives the store its share back."""
    monkeypatch.setenv("SPOKESYNC_MEMORY_LIMIT", "300MB")
    _prepare(wh, state_db, accounts_mapping)
    with StateStore(state_db) as store:
        assert _limit_mib(store) == pytest.approx(95.3, abs=0.1)
        p = plan_changes(state_db, wh.root, accounts_mapping, NEXT_DAY, store=store)
        assert _limit_mib(store) == pytest.approx(190.7, abs=0.1)
        assert len(_attached(store)) == 1
        with StateStore(state_db) as other:  # e.g. the next mapping's refresh
            assert _limit_mib(other) == pytest.approx(190.7, abs=0.1)
        p.close()
        assert _limit_mib(store) == pytest.approx(95.3, abs=0.1)
        assert _attached(store) == []


def test_a_hosted_plan_that_fails_leaves_nothing_attached(
    wh: Warehouse, state_db: Path, accounts_mapping: MappingSpec
) -> None:
    _prepare(wh, state_db, accounts_mapping)
    warehouse.master_path(wh.root, "accounts").unlink()  # the mapping's source is gone
    with StateStore(state_db) as store:
        with pytest.raises(Exception, match="accounts"):
            plan_changes(state_db, wh.root, accounts_mapping, NEXT_DAY, store=store)
        assert _attached(store) == []
        assert _limit_mib(store) < 1024  # the store's share again, not the whole budget
        assert store.snapshot_count("companies") == 21  # 3 records × 7 properties


def test_hosted_plans_of_two_mappings_live_side_by_side(
    wh: Warehouse, state_db: Path, accounts_mapping: MappingSpec
) -> None:
    """The sync holds one mapping's plan (being pushed) while the next one is planned."""
    _prepare(wh, state_db, accounts_mapping)
    with StateStore(state_db) as store:
        first = plan_changes(state_db, wh.root, accounts_mapping, NEXT_DAY, store=store)
        second = plan_changes(state_db, wh.root, accounts_mapping, AS_OF, store=store)
        assert len(_attached(store)) == 2
        # AS_OF: accounts 2's head count is that day's 25 vs the snapshot's 20 as well
        assert _counts(first) == _counts(second) == (5, 3, 2, 15, 3)
        ids = pa.concat_tables([first.desired_ids().read_all(), second.desired_ids().read_all()])
        assert sorted(ids.column(0).to_pylist()) == sorted([f"A000{i}" for i in range(1, 6)] * 2)
        first.close()
        assert len(_attached(store)) == 1
        assert [c.external_id for b in second.batches(10) for c in b] == [
            "A0002",
            "A0004",
            "A0005",
        ]
        second.close()
        assert _attached(store) == []
