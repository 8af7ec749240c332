"""The plan that follows the changed records (fingerprint pre-filter, adoption work skipped
when nothing can match, planned inside the open store) is exactly the plan that compares every
record field by field: same records, same properties, same old and new values, same tolerated
and held counts — over days with warehouse edits, nulls, deleted rows, new records, people's
edits and deletions in HubSpot and a tolerance field (hypothesis draws the days)."""

from __future__ import annotations

import datetime as dt
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spokesync import diff
from spokesync.diff import ChangePlan, plan_changes
from spokesync.mapping import MappingSpec, load_mapping
from spokesync.state import StateStore
from tests.engine.conftest import AS_OF, Warehouse, account
from tests.engine.helpers import sync

NEXT_DAY = AS_OF + dt.timedelta(days=1)

MAPPING = """
object_type: companies
id: {property: spokesync_account_id, column: account_id}
source:
  sql: SELECT * FROM accounts WHERE CAST(created_at AS DATE) <= $as_of
as_of_column: updated_at
fields:
  - {property: name, type: string, column: name}
  - {property: domain, type: string, format: domain, column: domain}
  - {property: numberofemployees, type: number, column: employee_count,
     tolerance: {relative: 0.1}}
  - {property: country, type: string, column: country, null_policy: clear}
  - {property: industry, type: enumeration, column: industry, options: [COMPUTER_SOFTWARE, RETAIL]}
  - {property: lifecyclestage, type: enumeration, expr: "'customer'", owner: hubspot,
     options: [lead, customer]}
"""
PROPS = ["spokesync_account_id", "name", "domain", "numberofemployees", "country"]
PROPS += ["industry", "lifecyclestage"]

# What happens to one account the next day, in the warehouse and in HubSpot.
WAREHOUSE_EDITS = st.sampled_from(
    [
        {},
        {"employee_count": "+1"},  # within the 10% tolerance for most accounts
        {"employee_count": "+100"},  # beyond it
        {"employee_count": None},  # skip policy: no value sends nothing
        {"country": None},  # clear policy
        {"country": "FR"},
        {"name": None},
        {"name": "  Renamed "},
        {"domain": "https://WWW.NEW.example.com/"},
        {"industry": "RETAIL"},
        {"deleted": True},  # the row is gone from the warehouse
    ]
)
HUBSPOT_EDITS = st.sampled_from(
    [
        {},
        {"lifecyclestage": "lead"},  # a person's edit of a hubspot-owned field: stands
        {"lifecyclestage": None},  # emptied by a person: written again
        {"numberofemployees": "7"},  # a person's edit of a warehouse-owned field: overwritten
        {"country": None},
        {"name": "Edited by a rep"},
        {"deleted": True},  # gone from HubSpot (deleted or merged there)
    ]
)


def _mapping(root: Path) -> MappingSpec:
    path = root / "mappings" / "companies.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(MAPPING))
    return load_mapping(path)


def _row(i: int, edit: dict[str, Any]) -> dict[str, Any]:
    over = {k: v for k, v in edit.items() if k != "deleted"}
    if over.get("employee_count") in ("+1", "+100"):
        over["employee_count"] = 10 * i + int(str(over["employee_count"])[1:])
    return account(i, **over)


def _hubspot_view(store: StateStore, edits: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """The records a full refresh reads: the snapshot with people's edits, minus deletions."""
    records = []
    for ext, values in sorted(store.snapshot_values("companies").items()):
        edit = edits.get(int(ext[1:]), {})
        if edit.get("deleted"):
            continue
        props = {p: values.get(p) for p in PROPS} | {
            k: v for k, v in edit.items() if k != "deleted"
        }
        records.append({"id": f"h-{ext}", "properties": props})
    return records


def _plan_rows(p: ChangePlan) -> tuple[object, ...]:
    rows = sorted(
        (r["external_id"], r["property"], r["old_value"], r["new_value"], r["kind"])
        for r in p.planned_rows().read_all().to_pylist()
    )
    tolerated = sorted(
        p.con.execute(
            "SELECT external_id, property, old_value, new_value FROM tolerated"
        ).fetchall()
    )
    counts = (
        p.records_desired,
        p.records_changed,
        p.records_new,
        p.fields_changed,
        p.fields_cleared,
        p.fields_held,
        p.fields_within_tolerance,
        p.records_within_tolerance,
        p.write_calls_saved,
    )
    return rows, tolerated, counts


def _full_plan(state_db: Path, wh: Path, mapping: MappingSpec) -> tuple[object, ...]:
    """The plan comparing every record field by field (no fingerprint pre-filter)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(diff, "MAX_FINGERPRINT_PROPERTIES", -1)
        with plan_changes(state_db, wh, mapping, NEXT_DAY) as p:
            assert p.records_compared == p.records_desired
            return _plan_rows(p)


def _day(
    root: Path,
    n: int,
    warehouse_edits: dict[int, dict[str, Any]],
    hubspot_edits: dict[int, dict[str, Any]],
    new: int,
) -> tuple[tuple[object, ...], tuple[object, ...], tuple[object, ...], int]:
    mapping = _mapping(root)
    wh = Warehouse(root / "warehouse")
    state_db = root / "state" / "test.duckdb"
    wh.write("accounts", [account(i) for i in range(1, n + 1)])
    sync(state_db, wh.root, mapping, AS_OF)
    with StateStore(state_db, [mapping]) as store:
        store.replace_snapshot_from_hubspot(
            "companies",
            "spokesync_account_id",
            _hubspot_view(store, hubspot_edits),
            PROPS,
            mapping.property_types,
        )
    rows = [
        _row(i, warehouse_edits.get(i, {}))
        for i in range(1, n + 1)
        if not warehouse_edits.get(i, {}).get("deleted")
    ]
    wh.write("accounts", rows + [account(i) for i in range(n + 1, n + 1 + new)])
    with plan_changes(state_db, wh.root, mapping, NEXT_DAY) as p:
        pruned, compared = _plan_rows(p), p.records_compared
    with (
        StateStore(state_db) as store,
        plan_changes(state_db, wh.root, mapping, NEXT_DAY, store=store) as p,
    ):
        hosted = _plan_rows(p)
    return pruned, hosted, _full_plan(state_db, wh.root, mapping), compared


def test_a_day_by_hand_equals_the_full_comparison(tmp_path: Path) -> None:
    """Accounts 1–6: 2 within tolerance, 3 beyond it, 4 deleted in the warehouse, 5 emptied
    by a person (lifecyclestage), 6 deleted in HubSpot; account 7 is new."""
    pruned, hosted, full, compared = _day(
        tmp_path,
        6,
        {2: {"employee_count": "+1"}, 3: {"employee_count": "+100"}, 4: {"deleted": True}},
        {5: {"lifecyclestage": None}, 6: {"deleted": True}},
        new=1,
    )
    assert pruned == hosted == full
    rows, tolerated, counts = pruned
    assert rows == [
        ("A0003", "numberofemployees", "30", "130", "update"),
        ("A0005", "lifecyclestage", None, "customer", "update"),
        *[("A0006", p, None, v, "create") for p, v in sorted(_created(6).items())],
        *[("A0007", p, None, v, "create") for p, v in sorted(_created(7).items())],
    ]
    assert tolerated == [("A0002", "numberofemployees", "20", "21")]
    # 6 desired: 1, 2, 3, 5 known (4 deleted, 6 gone from HubSpot, 7 new); 4 records written
    assert counts == (6, 4, 2, 16, 0, 0, 1, 1, 0)
    assert compared == 5  # 2, 3, 5 by their fingerprints, 6 and 7 absent from the snapshot


def _created(i: int) -> dict[str, str]:
    return {
        "spokesync_account_id": f"A{i:04d}",
        "name": f"Account {i}",
        "domain": f"acct{i}.example.com",
        "numberofemployees": str(10 * i),
        "country": "DE",
        "industry": "COMPUTER_SOFTWARE",
        "lifecyclestage": "customer",
    }


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    n=st.integers(min_value=1, max_value=8),
    warehouse_edits=st.dictionaries(st.integers(1, 8), WAREHOUSE_EDITS, max_size=8),
    hubspot_edits=st.dictionaries(st.integers(1, 8), HUBSPOT_EDITS, max_size=8),
    new=st.integers(min_value=0, max_value=2),
)
def test_the_pruned_plan_equals_the_full_comparison(
    n: int,
    warehouse_edits: dict[int, dict[str, Any]],
    hubspot_edits: dict[int, dict[str, Any]],
    new: int,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pruned, hosted, full, _ = _day(Path(tmp), n, warehouse_edits, hubspot_edits, new)
    assert pruned == hosted == full
