"""Diff semantics, each with exact expectations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from spokesync.desired import DesiredStateError, desired_table
from spokesync.mapping import MappingSpec
from spokesync.rollout import Rollout, rollout_bucket
from spokesync.state import StateStore
from tests.engine.conftest import ACCOUNTS_MAPPING, AS_OF, Warehouse, account
from tests.engine.helpers import confirm_all, plan, sync

NEXT_DAY = AS_OF + dt.timedelta(days=1)


def _props(i: int) -> dict[str, str]:
    return {
        "spokesync_account_id": f"A{i:04d}",
        "name": f"Account {i}",
        "domain": f"acct{i}.example.com",
        "numberofemployees": str(10 * i),
        "country": "DE",
        "industry": "COMPUTER_SOFTWARE",
        "lifecyclestage": "customer",
    }


def test_first_sync_creates_every_record_in_full(
    wh: Warehouse, state_db: Path, accounts_mapping: MappingSpec
) -> None:
    wh.write("accounts", [account(i) for i in (1, 2, 3)])
    p, changes = plan(state_db, wh.root, accounts_mapping, AS_OF)
    assert (p.records_desired, p.records_changed, p.records_new, p.fields_changed) == (3, 3, 3, 21)
    assert [(c.external_id, c.kind, c.hubspot_id) for c in changes] == [
        ("A0001", "create", None),
        ("A0002", "create", None),
        ("A0003", "create", None),
    ]
    assert [c.properties for c in changes] == [_props(1), _props(2), _props(3)]
    assert {c.as_of for c in changes} == {AS_OF}
    assert {c.canonical for c in changes} == {True}  # the store saves them as they are
    p.close()


def test_unchanged_warehouse_plans_zero_changes(
    wh: Warehouse, state_db: Path, accounts_mapping: MappingSpec
) -> None:
    wh.write("accounts", [account(i) for i in range(1, 6)])
    assert len(sync(state_db, wh.root, accounts_mapping, AS_OF)) == 5
    p, changes = plan(state_db, wh.root, accounts_mapping, NEXT_DAY)
    assert (p.records_desired, p.records_changed, p.fields_changed, changes) == (5, 0, 0, [])
    assert p.records_compared == 0  # the fingerprints ruled every record out
    p.close()


def test_equal_after_canonicalisation_is_no_change(
    wh: Warehouse, state_db: Path, accounts_mapping: MappingSpec
) -> None:
    wh.write("accounts", [account(1)])
    sync(state_db, wh.root, accounts_mapping, AS_OF)
    # Same values, written differently: spaces, case of the domain, a URL.
    wh.write("accounts", [account(1, name="  Account 1 ", domain="https://WWW.acct1.example.com/")])
    p, changes = plan(state_db, wh.root, accounts_mapping, NEXT_DAY)
    assert changes == []
    p.close()


def test_one_field_changed_sends_exactly_that_record_and_property(
    wh: Warehouse, state_db: Path, accounts_mapping: MappingSpec
) -> None:
    wh.write("accounts", [account(i) for i in range(1, 6)])
    sync(state_db, wh.root, accounts_mapping, AS_OF)
    wh.write(
        "accounts", [account(i, employee_count=999 if i == 3 else 10 * i) for i in range(1, 6)]
    )
    p, changes = plan(state_db, wh.root, accounts_mapping, NEXT_DAY)
    assert len(changes) == 1 and p.records_compared == 1
    c = changes[0]
    assert (c.external_id, c.hubspot_id, c.kind, c.properties, c.as_of) == (
        "A0003",
        "h-A0003",
        "update",
        {"numberofemployees": "999"},
        NEXT_DAY,
    )
    assert p.planned_rows().read_all().to_pylist() == [
        {
            "object_type": "companies",
            "external_id": "A0003",
            "hubspot_id": "h-A0003",
            "property": "numberofemployees",
            "old_value": "30",
            "new_value": "999",
            "kind": "update",
            "as_of": NEXT_DAY,
        }
    ]
    p.close()


def test_null_policy_clear_and_skip(
    wh: Warehouse, state_db: Path, accounts_mapping: MappingSpec
) -> None:
    wh.write("accounts", [account(1), account(2)])
    sync(state_db, wh.root, accounts_mapping, AS_OF)
    # country is `clear`, name is `skip`: nulling both clears only country.
    wh.write("accounts", [account(1, country=None, name=None), account(2)])
    p, changes = plan(state_db, wh.root, accounts_mapping, NEXT_DAY)
    assert [(c.external_id, c.properties) for c in changes] == [("A0001", {"country": ""})]
    assert p.fields_cleared == 1
    p.close()
    confirm_all(state_db, accounts_mapping, changes)
    # HubSpot now holds no country: a second run sends nothing (no repeated clears).
    p, changes = plan(state_db, wh.root, accounts_mapping, NEXT_DAY)
    assert changes == []
    p.close()
    values = StateStore(state_db).snapshot_values("companies")["A0001"]
    assert values["country"] is None and values["name"] == "Account 1"


def test_new_record_skips_null_values(
    wh: Warehouse, state_db: Path, accounts_mapping: MappingSpec
) -> None:
    wh.write("accounts", [account(1, country=None, domain=None)])
    p, changes = plan(state_db, wh.root, accounts_mapping, AS_OF)
    expected = _props(1)
    del expected["country"], expected["domain"]
    assert [c.properties for c in changes] == [expected]
    p.close()


def test_hubspot_owned_field_written_only_when_empty(
    wh: Warehouse, state_db: Path, accounts_mapping: MappingSpec
) -> None:
    wh.write("accounts", [account(1), account(2)])
    sync(state_db, wh.root, accounts_mapping, AS_OF)
    # A person moved A0001 to "lead" and a full refresh emptied A0002's stage.
    with StateStore(state_db) as store:
        refreshed = [
            {"id": "h-A0001", "properties": {**_props(1), "lifecyclestage": "lead"}},
            {"id": "h-A0002", "properties": {**_props(2), "lifecyclestage": ""}},
        ]
        report = store.replace_snapshot_from_hubspot(
            "companies",
            "spokesync_account_id",
            refreshed,
            accounts_mapping.managed_properties,
            accounts_mapping.property_types,
        )
    assert (report.values_drifted, report.records_drifted) == (2, 2)
    p, changes = plan(state_db, wh.root, accounts_mapping, NEXT_DAY)
    assert [(c.external_id, c.properties) for c in changes] == [
        ("A0002", {"lifecyclestage": "customer"})
    ]
    p.close()


def test_warehouse_owned_field_edited_in_hubspot_is_overwritten(
    wh: Warehouse, state_db: Path, accounts_mapping: MappingSpec
) -> None:
    wh.write("accounts", [account(1)])
    sync(state_db, wh.root, accounts_mapping, AS_OF)
    with StateStore(state_db) as store:
        store.replace_snapshot_from_hubspot(
            "companies",
            "spokesync_account_id",
            [{"id": "h-A0001", "properties": {**_props(1), "name": "Renamed by sales"}}],
            accounts_mapping.managed_properties,
            accounts_mapping.property_types,
        )
    p, changes = plan(state_db, wh.root, accounts_mapping, NEXT_DAY)
    assert [(c.external_id, c.properties) for c in changes] == [("A0001", {"name": "Account 1"})]
    p.close()


def test_as_of_guard_never_rolls_back_newer_values(
    wh: Warehouse, state_db: Path, accounts_mapping: MappingSpec
) -> None:
    wh.write("accounts", [account(1, employee_count=50), account(2)])
    sync(state_db, wh.root, accounts_mapping, NEXT_DAY)  # written from the newer partition
    # A backfill of an older day computes other values: the newer ones stand.
    wh.write("accounts", [account(1, employee_count=40, name="Old name"), account(2), account(3)])
    p, changes = plan(state_db, wh.root, accounts_mapping, AS_OF)
    assert [(c.external_id, c.kind) for c in changes] == [("A0003", "create")]
    # The plan says what the guard held back: A0001's name and employee count.
    assert (p.fields_held, p.held_newest_as_of) == (2, NEXT_DAY)
    assert p.held_line().startswith(f"2 fields kept: newer values from {NEXT_DAY}")
    assert f"- 2 fields kept: newer values from {NEXT_DAY}" in p.summary_markdown()
    p.close()
    # The same change from a newer partition goes through.
    p, changes = plan(state_db, wh.root, accounts_mapping, NEXT_DAY + dt.timedelta(days=1))
    assert [(c.external_id, c.properties) for c in changes if c.kind == "update"] == [
        ("A0001", {"name": "Old name", "numberofemployees": "40"})
    ]
    p.close()


def test_duplicates_and_missing_ids_are_reported(
    wh: Warehouse, state_db: Path, accounts_mapping: MappingSpec
) -> None:
    later = dt.datetime(2026, 1, 12, tzinfo=dt.UTC)
    wh.write(
        "accounts",
        [
            account(1, name="Older"),
            account(1, name="Newest", updated_at=later),  # same id, newer row wins
            account(2, account_id=" A0002 "),  # canonical key: trimmed
            account(2),
            account(3, account_id=None),
            account(4, account_id="   "),
        ],
    )
    p, changes = plan(state_db, wh.root, accounts_mapping, AS_OF)
    assert (p.records_desired, p.duplicates, p.rejected_ids) == (2, 2, 2)
    assert p.desired.duplicate_samples == ["A0001", "A0002"]
    assert [(c.external_id, c.properties["name"]) for c in changes] == [
        ("A0001", "Newest"),
        ("A0002", "Account 2"),
    ]
    assert "duplicate ids dropped: 2; rows without id rejected: 2" in p.summary_markdown()
    p.close()


def test_contacts_ids_are_lowercased_emails(
    wh: Warehouse, state_db: Path, write_mapping: Callable[[str, str], MappingSpec]
) -> None:
    mapping = write_mapping(
        "contacts",
        """
        object_type: contacts
        id: {property: email, column: email}
        source: {sql: SELECT * FROM users}
        fields:
          - {property: firstname, type: string, column: first_name}
        """,
    )
    user = {"user_id": "U1", "account_id": "A0001", "first_name": "Ann", "last_name": "L"}
    wh.write(
        "users", [{**user, "email": " Ann@Example.COM "}, {**user, "email": "ann@example.com"}]
    )
    p, changes = plan(state_db, wh.root, mapping, AS_OF)
    assert [(c.external_id, c.properties) for c in changes] == [
        ("ann@example.com", {"email": "ann@example.com", "firstname": "Ann"})
    ]
    assert p.duplicates == 1
    p.close()


def test_rollout_percentage_is_stable_and_only_grows(
    wh: Warehouse, state_db: Path, accounts_mapping: MappingSpec
) -> None:
    wh.write("accounts", [account(i) for i in range(1, 201)])
    chosen = {}
    for pct in (10, 10, 50, 100):
        p, changes = plan(state_db, wh.root, accounts_mapping, AS_OF, Rollout(percent=pct))
        ids = {c.external_id for c in changes}
        assert ids == {
            f"A{i:04d}" for i in range(1, 201) if rollout_bucket(f"A{i:04d}") < pct * 100
        }
        chosen.setdefault(pct, ids)
        assert chosen[pct] == ids  # same ids every run
        p.close()
    assert chosen[10] < chosen[50] < chosen[100]
    assert len(chosen[100]) == 200 and 5 <= len(chosen[10]) <= 40


def test_rollout_predicate_over_source_columns(
    wh: Warehouse, state_db: Path, accounts_mapping: MappingSpec
) -> None:
    wh.write("accounts", [account(i, country="US" if i % 2 else "DE") for i in range(1, 7)])
    p, changes = plan(
        state_db, wh.root, accounts_mapping, AS_OF, Rollout(predicate="country = 'DE'")
    )
    assert [c.external_id for c in changes] == ["A0002", "A0004", "A0006"]
    assert p.records_desired == 3
    p.close()


def test_batches_pack_records_densely(
    wh: Warehouse, state_db: Path, accounts_mapping: MappingSpec
) -> None:
    wh.write("accounts", [account(i) for i in range(1, 251)])
    p = plan(state_db, wh.root, accounts_mapping, AS_OF)[0]
    assert [len(b) for b in p.batches(100)] == [100, 100, 50]
    assert [len(b) for b in p.batches(7)][-1] == 250 % 7
    p.close()


def test_source_sql_errors_name_the_mapping_and_field(
    wh: Warehouse, write_mapping: Callable[[str, str], MappingSpec]
) -> None:
    wh.write("accounts", [account(1)])
    bad_field = write_mapping(
        "companies",
        ACCOUNTS_MAPPING.replace("column: employee_count", "expr: 'employee_count + nope'"),
    )
    with pytest.raises(
        DesiredStateError, match=r"companies.yaml: fields\[2\] \(numberofemployees\)"
    ):
        desired_table(wh.root, bad_field, AS_OF)
    bad_sql = write_mapping("companies", ACCOUNTS_MAPPING.replace("FROM accounts", "FROM acounts"))
    with pytest.raises(DesiredStateError, match=r"companies.yaml: source.sql: .*acounts"):
        desired_table(wh.root, bad_sql, AS_OF)


def test_new_property_added_to_mapping_is_sent_to_known_records(
    wh: Warehouse,
    state_db: Path,
    accounts_mapping: MappingSpec,
    write_mapping: Callable[[str, str], MappingSpec],
) -> None:
    wh.write("accounts", [account(1)])
    sync(state_db, wh.root, accounts_mapping, AS_OF)
    wider = write_mapping(
        "companies",
        ACCOUNTS_MAPPING
        + "  - {property: spokesync_owner, type: string, format: email, column: owner_email}\n",
    )
    p, changes = plan(state_db, wh.root, wider, AS_OF)
    assert [(c.external_id, c.kind, c.properties) for c in changes] == [
        ("A0001", "update", {"spokesync_owner": "owner@example.com"})
    ]
    p.close()


def test_associations_by_external_id_and_hubspot_id_lookup(
    wh: Warehouse, state_db: Path, write_mapping: Callable[[str, str], MappingSpec]
) -> None:
    mapping = write_mapping(
        "contacts",
        """
        object_type: contacts
        id: {property: email, column: email}
        source: {sql: SELECT * FROM users}
        fields:
          - {property: firstname, type: string, column: first_name}
        associations:
          - {to_object_type: companies, column: account_id, association_type_id: 279}
        """,
    )
    wh.write(
        "users",
        [
            {"user_id": "U1", "account_id": "A0001", "email": "a@x.com", "first_name": "A"},
            {"user_id": "U2", "account_id": None, "email": "b@x.com", "first_name": "B"},
            {"user_id": "U3", "account_id": "A0002", "email": "c@x.com", "first_name": "C"},
        ],
    )
    sync(state_db, wh.root, mapping, AS_OF)
    wh.write(
        "users",
        [
            {"user_id": "U1", "account_id": "A0001", "email": "a@x.com", "first_name": "A"},
            {"user_id": "U2", "account_id": None, "email": "b@x.com", "first_name": "B"},
            {"user_id": "U3", "account_id": "A0002", "email": "c@x.com", "first_name": "Cee"},
        ],
    )
    p, _ = plan(state_db, wh.root, mapping, NEXT_DAY)
    links = [(a.from_external_id, a.to_object_type, a.to_external_id) for a in p.associations()]
    assert links == [("c@x.com", "companies", "A0002")]
    assert len(p.associations(changed_only=False)) == 2
    assert p.associations()[0].association_type_id == 279
    p.close()
    ids = StateStore(state_db).hubspot_ids("contacts", ["a@x.com", "c@x.com", "zz@x.com"])
    assert ids == {"a@x.com": "h-a@x.com", "c@x.com": "h-c@x.com"}


def test_mappings_wider_than_the_fingerprint_mask_still_diff_exactly(
    wh: Warehouse, state_db: Path, write_mapping: Callable[[str, str], MappingSpec]
) -> None:
    def mapping_with(owner: str) -> MappingSpec:
        fields = "".join(
            f"  - {{property: p{i:02d}, type: number, expr: 'employee_count + {i}', "
            f"owner: {owner}}}\n"
            for i in range(70)
        )
        return write_mapping(
            "companies",
            "object_type: companies\n"
            "id: {property: spokesync_account_id, column: account_id}\n"
            "source: {sql: SELECT * FROM accounts}\nfields:\n" + fields,
        )

    # 70 warehouse-owned fields: fingerprints still apply (no per-property mask needed).
    wide = mapping_with("warehouse")
    wh.write("accounts", [account(1), account(2)])
    assert len(sync(state_db, wh.root, wide, AS_OF)) == 2
    wh.write("accounts", [account(1), account(2, employee_count=21)])
    p, changes = plan(state_db, wh.root, wide, NEXT_DAY)
    assert p.records_compared == 1
    assert [(c.external_id, len(c.properties), c.properties["p05"]) for c in changes] == [
        ("A0002", 70, "26")
    ]
    p.close()
    # 70 hubspot-owned fields: more than the 63-bit mask, so every record is compared.
    hub = mapping_with("hubspot")
    wh.write("accounts", [account(1, employee_count=99), account(2), account(3)])
    p, changes = plan(state_db, wh.root, hub, NEXT_DAY)
    assert p.records_compared == 3
    assert [(c.external_id, c.kind, len(c.properties)) for c in changes] == [
        ("A0003", "create", 71)
    ]
    p.close()


def test_memory_limit_spills_to_a_private_dir_removed_on_close(
    wh: Warehouse, state_db: Path, accounts_mapping: MappingSpec
) -> None:
    from spokesync.diff import plan_changes

    wh.write("accounts", [account(i) for i in range(1, 4)])
    p = plan_changes(state_db, wh.root, accounts_mapping, AS_OF, memory_limit="200MB")
    assert p.spill_dir is not None and p.spill_dir.is_dir()
    spill = p.spill_dir
    assert p.records_changed == 3
    p.close()
    assert not spill.exists()
