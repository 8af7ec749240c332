"""Change thresholds (tolerance / resolution / buckets): exact expectations, written by hand.

The held value is what the snapshot says HubSpot holds; a value within its field's threshold
of it is not sent, and the snapshot keeps HubSpot's value, so drift never passes the threshold.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spokesync.canonical import configure_connection
from spokesync.mapping import MappingSpec
from spokesync.mapping.loader import MappingError
from spokesync.mapping.spec import FieldSpec
from spokesync.state import StateStore
from spokesync.tolerance import field_within_sql
from tests.engine.conftest import AS_OF, Warehouse, account
from tests.engine.helpers import confirm_all, plan, sync

DAY = dt.timedelta(days=1)
WriteMapping = Callable[[str, str], MappingSpec]


def _mapping(write_mapping: WriteMapping, field: str) -> MappingSpec:
    return write_mapping(
        "companies",
        f"""
        object_type: companies
        id: {{property: spokesync_account_id, column: account_id}}
        source: {{sql: SELECT * FROM accounts}}
        fields:
          - {{property: name, type: string, column: name}}
          - {field}
        """,
    )


def _held(state_db: Path, prop: str) -> dict[str, str | None]:
    with StateStore(state_db) as store, store.connection.connection() as con:
        rows = con.execute(
            "SELECT external_id, value FROM snapshot WHERE property = $p ORDER BY external_id",
            {"p": prop},
        ).fetchall()
    return dict(rows)


def _sent(changes: list) -> dict[str, dict[str, str]]:
    return {c.external_id: c.properties for c in changes}


# -- the predicate, value by value ---------------------------------------------------------------

_CON = duckdb.connect()
configure_connection(_CON)


def within(spec: dict, held: str | None, desired: str | None) -> bool:
    f = FieldSpec(property="x", column="x", **spec)
    built = field_within_sql(f, "$h", "$d", "t0")
    assert built is not None
    sql, params = built
    row = _CON.execute(f"SELECT coalesce(({sql}), false)", {**params, "h": held, "d": desired})
    return bool(row.fetchall()[0][0])


REL = {"type": "number", "tolerance": {"relative": 0.1}}
ABS = {"type": "number", "tolerance": {"absolute": "0.1"}}


@pytest.mark.parametrize(
    ("spec", "held", "desired", "expected"),
    [
        (REL, "100", "110", True),  # exactly at the tolerance: within
        (REL, "100", "90", True),
        (REL, "100", "110.000001", False),  # just past it
        (REL, "-100", "-91", True),  # negative numbers: relative to |held|
        (REL, "-100", "-110.5", False),
        (REL, "0", "0.000001", False),  # relative to a held 0: any move is sent
        (REL, None, "5", False),  # HubSpot holds nothing: the first write goes through
        (REL, "n/a", "5", False),  # HubSpot holds text: not comparable, sent
        (REL, "100000000000000", "105000000000000", True),  # beyond 10^13: DOUBLE
        (ABS, "1.0", "1.1", True),  # exact decimals (in DOUBLE 1.1 - 1.0 > 0.1)
        (ABS, "-1", "-1.1", True),
        (ABS, "1", "1.100001", False),
        ({"type": "number", "tolerance": {"absolute": 2, "relative": 0.5}}, "0", "2", True),
        ({"type": "number", "tolerance": {"absolute": 2, "relative": 0.5}}, "10", "15", True),
        ({"type": "number", "tolerance": {"absolute": 2, "relative": 0.5}}, "10", "15.5", False),
        ({"type": "number", "buckets": [40, 60]}, "45", "59.999", True),
        ({"type": "number", "buckets": [40, 60]}, "59.9", "60", False),  # an edge is the upper
        ({"type": "number", "buckets": [40, 60]}, "-5", "39", True),
        ({"type": "number", "buckets": [40, 60]}, "60", "1000000000000000", True),
        (
            {"type": "datetime", "resolution": "day"},
            "2026-01-02T00:00:00.000Z",
            "2026-01-02T23:59:59.999Z",
            True,
        ),
        (
            {"type": "datetime", "resolution": "day"},
            "2026-01-02T23:59:59.999Z",
            "2026-01-03T00:00:00.000Z",
            False,
        ),
        # 22:30 and 23:30 UTC on 2 Jan are 23:30 on 2 Jan and 00:30 on 3 Jan in Berlin
        (
            {"type": "datetime", "resolution": {"unit": "day", "timezone": "Europe/Berlin"}},
            "2026-01-02T22:30:00.000Z",
            "2026-01-02T23:30:00.000Z",
            False,
        ),
        # 03:00 UTC on 11 Jan is still 10 Jan (22:00) in New York
        (
            {"type": "datetime", "resolution": {"unit": "day", "timezone": "America/New_York"}},
            "2026-01-10T12:00:00.000Z",
            "2026-01-11T03:00:00.000Z",
            True,
        ),
        (
            {"type": "datetime", "resolution": "hour"},
            "2026-01-02T10:00:00.000Z",
            "2026-01-02T10:59:00.000Z",
            True,
        ),
        ({"type": "date", "resolution": "month"}, "2026-01-01", "2026-01-31", True),
        ({"type": "date", "resolution": "month"}, "2026-01-31", "2026-02-01", False),
        ({"type": "date", "resolution": "week"}, "2026-01-05", "2026-01-11", True),  # Mon..Sun
        ({"type": "date", "resolution": "week"}, "2026-01-11", "2026-01-12", False),
    ],
)
def test_within_threshold_value_by_value(
    spec: dict, held: str | None, desired: str | None, expected: bool
) -> None:
    assert within(spec, held, desired) is expected


# -- the diff: what is sent, what the snapshot keeps, what it saved -------------------------------


def test_relative_tolerance_is_measured_from_what_hubspot_holds_so_drift_never_accumulates(
    wh: Warehouse, state_db: Path, write_mapping: WriteMapping
) -> None:
    m = _mapping(
        write_mapping,
        "{property: numberofemployees, type: number, column: employee_count, "
        "tolerance: {relative: 0.1}}",
    )
    counts = {1: 100, 2: 200, 3: 0}
    wh.write("accounts", [account(i, employee_count=n) for i, n in counts.items()])
    first = sync(state_db, wh.root, m, AS_OF)  # first write always goes through
    assert {e: c["numberofemployees"] for e, c in _sent(first).items()} == {
        "A0001": "100",
        "A0002": "200",
        "A0003": "0",
    }

    wh.write("accounts", [account(i, employee_count=n) for i, n in {1: 105, 2: 221, 3: 1}.items()])
    p, changes = plan(state_db, wh.root, m, AS_OF + DAY)
    # 105 is within 10% of 100; 221 is 21 past 200 (> 20); anything past a held 0 is sent
    assert _sent(changes) == {
        "A0002": {"numberofemployees": "221"},
        "A0003": {"numberofemployees": "1"},
    }
    assert (p.fields_within_tolerance, p.records_within_tolerance, p.write_calls_saved) == (1, 1, 0)
    assert p.within_tolerance_by_property() == {"numberofemployees": 1}
    p.close()
    confirm_all(state_db, m, changes)

    wh.write("accounts", [account(i, employee_count=n) for i, n in {1: 109, 2: 221, 3: 1}.items()])
    p, changes = plan(state_db, wh.root, m, AS_OF + 2 * DAY)
    assert changes == []  # 109 is still within 10% of the 100 HubSpot holds
    assert (p.fields_within_tolerance, p.records_within_tolerance, p.write_calls_saved) == (1, 1, 1)
    assert p.as_metadata()["write_calls_saved"] == 1
    assert "within tolerance, not sent: 1 fields; 1 records not written, 1 write calls saved" in (
        p.summary_markdown()
    )
    p.close()
    assert _held(state_db, "numberofemployees") == {"A0001": "100", "A0002": "221", "A0003": "1"}

    wh.write("accounts", [account(i, employee_count=n) for i, n in {1: 111, 2: 221, 3: 1}.items()])
    p, changes = plan(state_db, wh.root, m, AS_OF + 3 * DAY)
    assert _sent(changes) == {"A0001": {"numberofemployees": "111"}}  # 11 past the held 100
    assert (p.fields_within_tolerance, p.records_within_tolerance, p.write_calls_saved) == (0, 0, 0)
    p.close()


def test_absolute_tolerance_on_negative_numbers_and_clearing_always_goes_through(
    wh: Warehouse, state_db: Path, write_mapping: WriteMapping
) -> None:
    m = _mapping(
        write_mapping,
        '{property: spokesync_balance, type: number, expr: "employee_count - 1000", '
        "tolerance: {absolute: 5}, null_policy: clear}",
    )
    wh.write("accounts", [account(i, employee_count=0) for i in (1, 2, 3)])
    sync(state_db, wh.root, m, AS_OF)
    assert _held(state_db, "spokesync_balance") == {
        "A0001": "-1000",
        "A0002": "-1000",
        "A0003": "-1000",
    }
    wh.write(
        "accounts",
        [
            account(1, employee_count=5),
            account(2, employee_count=-6),
            account(3, employee_count=None),
        ],
    )
    p, changes = plan(state_db, wh.root, m, AS_OF + DAY)
    # -995 is exactly 5 from -1000 (within); -1006 is 6 away; no value with `clear` clears
    assert _sent(changes) == {
        "A0002": {"spokesync_balance": "-1006"},
        "A0003": {"spokesync_balance": ""},
    }
    assert (p.fields_within_tolerance, p.records_within_tolerance, p.fields_cleared) == (1, 1, 1)
    p.close()


def test_day_resolution_in_a_time_zone(
    wh: Warehouse, state_db: Path, write_mapping: WriteMapping
) -> None:
    m = _mapping(
        write_mapping,
        "{property: spokesync_updated_at, type: datetime, column: updated_at, "
        "resolution: {unit: day, timezone: America/New_York}}",
    )
    noon = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)
    wh.write("accounts", [account(i, updated_at=noon) for i in (1, 2, 3)])
    sync(state_db, wh.root, m, AS_OF)
    later = {
        1: dt.datetime(2026, 1, 11, 3, 0, tzinfo=dt.UTC),  # 22:00 on 10 Jan in New York
        2: dt.datetime(2026, 1, 10, 23, 30, tzinfo=dt.UTC),  # 18:30 on 10 Jan
        3: dt.datetime(2026, 1, 11, 6, 0, tzinfo=dt.UTC),  # 01:00 on 11 Jan: another day
    }
    wh.write("accounts", [account(i, updated_at=t) for i, t in later.items()])
    p, changes = plan(state_db, wh.root, m, AS_OF + DAY)
    assert _sent(changes) == {"A0003": {"spokesync_updated_at": "2026-01-11T06:00:00.000Z"}}
    assert (p.fields_within_tolerance, p.records_within_tolerance) == (2, 2)
    p.close()


def test_buckets_send_only_a_move_to_another_bucket(
    wh: Warehouse, state_db: Path, write_mapping: WriteMapping
) -> None:
    m = _mapping(
        write_mapping,
        "{property: spokesync_adoption_score, type: number, column: employee_count, "
        "buckets: [20, 40, 60]}",
    )
    first = {1: 45, 2: 59, 3: 19, 4: 60}
    wh.write("accounts", [account(i, employee_count=n) for i, n in first.items()])
    sync(state_db, wh.root, m, AS_OF)
    wh.write(
        "accounts", [account(i, employee_count=n) for i, n in {1: 55, 2: 60, 3: 0, 4: 99}.items()]
    )
    p, changes = plan(state_db, wh.root, m, AS_OF + DAY)
    assert _sent(changes) == {"A0002": {"spokesync_adoption_score": "60"}}  # 59 → 60 crosses 60
    assert (p.fields_within_tolerance, p.records_within_tolerance) == (3, 3)
    p.close()


def test_write_calls_saved_is_batch_arithmetic_over_records_not_written(
    wh: Warehouse, state_db: Path, write_mapping: WriteMapping
) -> None:
    m = _mapping(
        write_mapping,
        "{property: numberofemployees, type: number, column: employee_count, "
        "tolerance: {relative: 0.05}}",
    )
    wh.write("accounts", [account(i, employee_count=1000) for i in range(1, 251)])
    sync(state_db, wh.root, m, AS_OF)
    # every count moves 1% (within 5%); 30 records are renamed as well
    wh.write(
        "accounts",
        [
            account(i, employee_count=1010, **({"name": f"Renamed {i}"} if i <= 30 else {}))
            for i in range(1, 251)
        ],
    )
    p, changes = plan(state_db, wh.root, m, AS_OF + DAY)
    assert len(changes) == 30
    assert {tuple(c.properties) for c in changes} == {("name",)}  # the count is not sent along
    # naive: 250 records, ⌈250/100⌉ = 3 calls; now 30 records, ⌈30/100⌉ = 1 call
    assert (p.fields_within_tolerance, p.records_within_tolerance, p.write_calls_saved) == (
        250,
        220,
        2,
    )
    p.close()


# -- the mapping spec ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "message"),
    [
        (
            "{property: name, type: string, column: name, tolerance: {absolute: 5}}",
            "fields[0] (name): 'tolerance' applies to number fields, not string "
            "(got tolerance: {'absolute': '5'})",
        ),
        (
            "{property: x, type: number, column: n, tolerance: {absolute: -1}}",
            "fields[0] (x).tolerance: tolerance absolute must not be negative (got -1)",
        ),
        (
            "{property: x, type: number, column: n, tolerance: {relative: 10}}",
            "fields[0] (x).tolerance: tolerance relative is a fraction of HubSpot's value, "
            "0 to 1 (0.1 = 10%); got 10",
        ),
        (
            "{property: x, type: number, column: n, tolerance: {absolute: 0}}",
            "fields[0] (x).tolerance: a tolerance needs 'absolute' or 'relative' above 0",
        ),
        (
            "{property: x, type: number, column: n, buckets: [20, 60, 40]}",
            "fields[0] (x).buckets: 'buckets' edges must be strictly ascending: 40 follows 60 "
            "(got [20, 60, 40])",
        ),
        (
            "{property: x, type: number, column: n, buckets: [20, abc]}",
            "fields[0] (x).buckets: a bucket edge must be a number (got 'abc')",
        ),
        (
            "{property: x, type: number, column: n, resolution: day}",
            "fields[0] (x): 'resolution' applies to date and datetime fields, not number "
            "(got resolution: {'unit': 'day', 'timezone': 'UTC'})",
        ),
        (
            "{property: x, type: date, column: n, resolution: day}",
            "fields[0] (x): resolution 'day' does not apply to a date: use one of week, "
            "month, quarter, year",
        ),
        (
            "{property: x, type: datetime, column: n, resolution: {unit: day, timezone: Mars/Base}}",
            "fields[0] (x).resolution.timezone: unknown IANA time zone 'Mars/Base'",
        ),
        (
            "{property: x, type: number, column: n, tolerance: {absolute: 1}, buckets: [1]}",
            "fields[0] (x): give at most one of 'tolerance', 'resolution', 'buckets'",
        ),
        (
            "{property: x, type: number, column: n, owner: hubspot, tolerance: {absolute: 1}}",
            "fields[0] (x): 'tolerance' applies to warehouse-owned fields",
        ),
    ],
)
def test_bad_thresholds_are_mapping_errors_naming_file_field_and_value(
    write_mapping: WriteMapping, tmp_path: Path, field: str, message: str
) -> None:
    with pytest.raises(MappingError) as err:
        write_mapping(
            "bad",
            f"""
            object_type: companies
            id: {{property: spokesync_account_id, column: account_id}}
            source: {{sql: SELECT * FROM accounts}}
            fields:
              - {field}
            """,
        )
    assert str(err.value).startswith(f"{tmp_path / 'mappings' / 'bad.yaml'}: {message}")


# -- the property: after any sequence of desired values ------------------------------------------

DECIMALS = st.decimals(min_value=-10_000, max_value=10_000, places=2, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(["absolute", "relative", "both"]),
    tol=st.sampled_from(["0.5", "1", "2.25", "0.05", "0.1"]),
    start=DECIMALS,
    desired=st.lists(DECIMALS, min_size=1, max_size=15),
)
def test_held_stays_within_tolerance_of_desired_or_the_value_was_sent(
    kind: str, tol: str, start: object, desired: list[object]
) -> None:
    spec = {
        "absolute": {"absolute": tol},
        "relative": {"relative": tol} if Fraction(tol) <= 1 else {"relative": "0.1"},
        "both": {"absolute": tol, "relative": "0.05"},
    }[kind]
    a = Fraction(spec.get("absolute", "0"))
    r = Fraction(spec.get("relative", "0"))
    held = Fraction(str(start))
    held_text = f"{start:f}"
    for value in desired:
        d = Fraction(str(value))
        sent = not within({"type": "number", "tolerance": spec}, held_text, f"{value:f}")
        gap = abs(d - held)
        # sent exactly when the value moved past the tolerance of what HubSpot holds
        assert sent == (gap > a and gap > r * abs(held)), (held_text, f"{value:f}", spec)
        if sent:
            held, held_text = d, f"{value:f}"
        assert sent or abs(held - d) <= max(a, r * abs(held))


@settings(max_examples=100, deadline=None)
@given(
    edges=st.lists(st.integers(-50, 150), min_size=1, max_size=5, unique=True).map(sorted),
    start=st.integers(-100, 200),
    desired=st.lists(st.integers(-100, 200), min_size=1, max_size=15),
)
def test_held_stays_in_the_bucket_of_desired_or_the_value_was_sent(
    edges: list[int], start: int, desired: list[int]
) -> None:
    def bucket(x: int) -> int:
        return sum(1 for e in edges if e <= x)

    held = start
    for d in desired:
        sent = not within({"type": "number", "buckets": edges}, str(held), str(d))
        assert sent == (bucket(held) != bucket(d))
        if sent:
            held = d
        assert bucket(held) == bucket(d)
