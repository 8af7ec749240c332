"""Source values downstream of ingest: exact digits through the shipped mappings, and every
record dropped before the push listed (with why), never only counted."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from spokesync.cli import main
from spokesync.desired import desired_table
from spokesync.diff import plan_changes
from spokesync.mapping import MappingSpec, load_mappings
from spokesync.settings import Settings
from spokesync.sync.runner import SyncOptions, run_sync
from tests.engine.conftest import AS_OF, TS, Warehouse, account
from tests.engine.test_repo_mappings import REPO_MAPPINGS, full_warehouse  # noqa: F401

BY_TYPE = {m.object_type: m for m in load_mappings(sorted(REPO_MAPPINGS.glob("*.yaml")))}
DAY = "2026-01-14"
BIG = Decimal("1000000000000000000000.00")  # 1e21: a float round trip gives 999999999999999900000


def _subscription(sub_id: str, account_id: str, mrr: Decimal, seats: int) -> dict[str, object]:
    return {
        "subscription_id": sub_id, "account_id": account_id, "plan": "growth",
        "status": "active", "seats": seats, "mrr": mrr, "currency": "EUR",
        "started_on": dt.date(2025, 3, 1), "renews_on": dt.date(2026, 3, 1),
        "canceled_on": None, "updated_at": TS,
    }  # fmt: skip


def test_money_and_big_integers_keep_their_digits_through_the_shipped_mappings(
    full_warehouse: Warehouse,  # noqa: F811
) -> None:
    full_warehouse.write(
        "subscriptions",
        [
            _subscription("S1", "A0001", BIG, 2**53 + 1),
            _subscription("S2", "A0002", Decimal("0.10"), 1),
        ],
        day=DAY,
    )
    companies, _ = desired_table(full_warehouse.root, BY_TYPE["companies"], AS_OF)
    by_id = {r["external_id"]: r for r in companies.to_pylist()}
    assert by_id["A0001"]["spokesync_mrr"] == "1000000000000000000000"
    assert by_id["A0001"]["spokesync_seats"] == "9007199254740993"
    assert by_id["A0002"]["spokesync_mrr"] == "0.1"
    deals, _ = desired_table(full_warehouse.root, BY_TYPE["deals"], AS_OF)
    amounts = {r["external_id"]: r["amount"] for r in deals.to_pylist()}
    assert amounts["S1"] == "12000000000000000000000"  # round(mrr * 12, 2), exact
    assert amounts["S2"] == "1.2"


REJECTING = """
object_type: companies
id: {property: spokesync_account_id, column: account_id}
source:
  sql: |
    SELECT NULLIF(account_id, 'A0002') AS account_id, name, updated_at,
           CASE WHEN account_id = 'A0003' THEN CAST('inf' AS DOUBLE)
                WHEN account_id = 'A0004' THEN CAST('nan' AS DOUBLE)
                ELSE employee_count / 2 END AS half
    FROM accounts
    UNION ALL
    SELECT account_id, 'older copy', updated_at - INTERVAL 1 DAY, 1 FROM accounts
    WHERE account_id = 'A0005'
as_of_column: updated_at
fields:
  - {property: name, type: string, column: name}
  - {property: numberofemployees, type: number, column: half, null_policy: clear}
"""


@pytest.fixture
def rejecting(wh: Warehouse, write_mapping: Callable[[str, str], MappingSpec]) -> MappingSpec:
    wh.write("accounts", [account(i) for i in range(1, 6)])
    return write_mapping("companies", REJECTING)


def test_records_dropped_before_planning_are_listed_with_why(
    wh: Warehouse, state_db: Path, rejecting: MappingSpec
) -> None:
    with plan_changes(state_db, wh.root, rejecting, AS_OF) as plan:
        rows = plan.rejected_rows().to_pylist()
        planned = {c.external_id for batch in plan.batches() for c in batch}
    # A0003/A0004 are never sent (not as "no value": numberofemployees has null_policy clear)
    assert planned == {"A0001", "A0005"}
    assert [(r["external_id"], r["reason"]) for r in rows] == [
        (None, "the id (column 'account_id') is empty: the record cannot be matched in HubSpot"),
        ("A0003", "field numberofemployees is not a finite number (inf or NaN): the record is "
         "not sent, HubSpot keeps its values"),
        ("A0004", "field numberofemployees is not a finite number (inf or NaN): the record is "
         "not sent, HubSpot keeps its values"),
        ("A0005", "duplicate id: another source row with this id was kept (the newest by "
         "updated_at); this one is not sent"),
    ]  # fmt: skip
    assert json.loads(rows[0]["record"])["name"] == "Account 2"  # findable in the source
    assert json.loads(rows[3]["record"])["name"] == "older copy"


def test_state_rejected_lists_them_after_a_sync(
    wh: Warehouse, rejecting: MappingSpec, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = wh.root.parent
    settings = Settings.from_env(environ={}, home=home, env="test")
    summary = run_sync(
        settings, SyncOptions(mapping_paths=[rejecting.path], shadow=True, as_of=AS_OF)
    )
    (obj,) = summary.objects
    assert obj.rejected_records == 4 and obj.to_metadata()["rejected_records"] == 4
    capsys.readouterr()
    assert main(["state", "--home", str(home), "--env", "test", "rejected"]) == 0
    out = capsys.readouterr().out
    lines = [x for x in out.splitlines() if x.startswith(f"| {summary.run_id}")]
    assert len(lines) == 4
    assert "| companies | 2026-01-15 | (empty) | the id (column 'account_id') is empty" in lines[0]
    assert "| A0005 | duplicate id" in lines[3]


def test_two_users_sharing_an_email_the_newest_is_the_contact_and_the_other_is_listed(
    full_warehouse: Warehouse,  # noqa: F811
    state_db: Path,
) -> None:
    newer = TS + dt.timedelta(days=1)
    full_warehouse.write(
        "users",
        [
            {"user_id": "U1", "account_id": "A0001", "email": "ann@example.com",
             "first_name": "Ann", "last_name": "Lee", "job_title": "CTO", "role": "admin",
             "created_at": TS, "updated_at": TS},
            {"user_id": "U9", "account_id": "A0002", "email": "Ann@Example.com ",
             "first_name": "Annie", "last_name": "Lee", "job_title": "CEO", "role": "admin",
             "created_at": TS, "updated_at": newer},
        ],
    )  # fmt: skip
    with plan_changes(state_db, full_warehouse.root, BY_TYPE["contacts"], AS_OF) as plan:
        changes = {c.external_id: c for batch in plan.batches() for c in batch}
        rejected = plan.rejected_rows().to_pylist()
    assert list(changes) == ["ann@example.com"]
    assert changes["ann@example.com"].properties["spokesync_user_id"] == "U9"
    assert [(r["external_id"], json.loads(r["record"])["spokesync_user_id"]) for r in rejected] == [
        ("ann@example.com", "U1")
    ]


# '/' stands for ';' in the tags (a mapping's SQL is one statement: no ';' in it).
UNSENDABLE = """
object_type: companies
id: {property: spokesync_account_id, column: account_id}
source:
  sql: |
    SELECT account_id, seats, active, renews, tier, replace(tags, '/', chr(59)) AS tags
    FROM (VALUES
      ('B01', ' 12 ', 'yes', '2026-03-01', 'GOLD', 'b/a'),
      ('B02', '12abc', 'yes', '2026-03-01', 'GOLD', 'a'),
      ('B03', ' inf ', 'yes', '2026-03-01', 'GOLD', 'a'),
      ('B04', '١٢', 'yes', '2026-03-01', 'GOLD', 'a'),
      ('B05', '1,200', 'yes', '2026-03-01', 'GOLD', 'a'),
      ('B06', '12', 'maybe', '2026-03-01', 'GOLD', 'a'),
      ('B07', '12', 'yes', '2026-02-30', 'GOLD', 'a'),
      ('B08', '12', 'yes', 'next tuesday', 'GOLD', 'a'),
      ('B09', '12', 'yes', '2026-03-01', 'PLATINUM', 'a'),
      ('B10', '12', 'yes', '2026-03-01', 'gold', 'a'),
      ('B11', '12', 'yes', '2026-03-01', 'GOLD', 'a/zz'),
      ('B12', '', '  ', NULL, ' ', '/'),
      ('B13', '1e3', 'No', '2026-03-01T23:30:00', ' SILVER ', ' a /b/'),
      ('B14', 'x' || repeat('9', 60), 'yes', '2026-03-01', 'GOLD', 'a')
    ) AS t(account_id, seats, active, renews, tier, tags)
fields:
  - {property: spokesync_seats, type: number, column: seats, null_policy: clear,
     label: Seats, group: spokesync}
  - {property: spokesync_active, type: bool, column: active, label: Active, group: spokesync}
  - {property: spokesync_renews_on, type: date, column: renews, label: Renews, group: spokesync}
  - {property: spokesync_tier, type: enumeration, column: tier, options: [GOLD, SILVER],
     label: Tier, group: spokesync}
  - {property: spokesync_tags, type: enumeration_multi, column: tags, options: [a, b],
     label: Tags, group: spokesync}
"""
_KEEPS = ": the record is not sent, HubSpot keeps its values"


def test_values_hubspot_would_refuse_are_rejected_up_front_naming_field_and_value(
    wh: Warehouse,
    state_db: Path,
    write_mapping: Callable[[str, str], MappingSpec],
    capsys: pytest.CaptureFixture[str],
) -> None:
    mapping = write_mapping("companies", UNSENDABLE)
    table, _ = desired_table(wh.root, mapping, AS_OF)
    sent = {r.pop("external_id"): r for r in table.to_pylist()}
    assert sent == {
        "B01": {"spokesync_seats": "12", "spokesync_active": "true",
                "spokesync_renews_on": "2026-03-01", "spokesync_tier": "GOLD",
                "spokesync_tags": "a;b"},
        "B12": {"spokesync_seats": None, "spokesync_active": None, "spokesync_renews_on": None,
                "spokesync_tier": None, "spokesync_tags": None},  # blank: no value, not refused
        "B13": {"spokesync_seats": "1000", "spokesync_active": "false",
                "spokesync_renews_on": "2026-03-01", "spokesync_tier": "SILVER",
                "spokesync_tags": "a;b"},
    }  # fmt: skip
    with plan_changes(state_db, wh.root, mapping, AS_OF) as plan:
        rows = plan.rejected_rows().to_pylist()
        planned = {c.external_id for batch in plan.batches() for c in batch}
    assert planned == {"B01", "B12", "B13"}  # never sent: not even as "no value"
    tier = ", which is not one of the field's options (GOLD, SILVER)"
    assert sorted((r["external_id"], r["reason"]) for r in rows) == [
        ("B02", 'field spokesync_seats holds "12abc", which is not a finite number' + _KEEPS),
        ("B03", 'field spokesync_seats holds " inf ", which is not a finite number' + _KEEPS),
        ("B04", 'field spokesync_seats holds "١٢", which is not a finite number' + _KEEPS),
        ("B05", 'field spokesync_seats holds "1,200", which is not a finite number' + _KEEPS),
        ("B06", 'field spokesync_active holds "maybe", which cannot be read as a bool '
                "(true/false, yes/no, 1/0)" + _KEEPS),
        ("B07", 'field spokesync_renews_on holds "2026-02-30", which cannot be read as a date'
                + _KEEPS),
        ("B08", 'field spokesync_renews_on holds "next tuesday", which cannot be read as a date'
                + _KEEPS),
        ("B09", 'field spokesync_tier holds "PLATINUM"' + tier + _KEEPS),
        ("B10", 'field spokesync_tier holds "gold"' + tier + _KEEPS),  # options are exact
        ("B11", 'field spokesync_tags holds "a;zz", which is not one of the field\'s options '
                "(a, b)" + _KEEPS),
        ("B14", 'field spokesync_seats holds "x' + "9" * 39 + '" (cut), which is not a finite '
                "number" + _KEEPS),
    ]  # fmt: skip

    # Listed by `spokesync state rejected` after a (shadow) sync, none of them sent.
    home = wh.root.parent
    settings = Settings.from_env(environ={}, home=home, env="test")
    summary = run_sync(
        settings, SyncOptions(mapping_paths=[mapping.path], shadow=True, as_of=AS_OF)
    )
    (obj,) = summary.objects
    assert obj.rejected_records == 11
    capsys.readouterr()
    assert main(["state", "--home", str(home), "--env", "test", "rejected"]) == 0
    out = capsys.readouterr().out
    lines = [x for x in out.splitlines() if x.startswith(f"| {summary.run_id}")]
    assert len(lines) == 11
    assert any('| B02 | field spokesync_seats holds "12abc"' in x for x in lines)
