"""Field rules on the plan: forward-only enumerations, companions (an amount never without its
currency), quality gates and reports — exact plans from hand-written rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from spokesync.diff import plan_changes
from spokesync.mapping import MappingSpec
from spokesync.mapping.loader import MappingError
from spokesync.state import StateStore
from tests.engine.conftest import AS_OF, Warehouse, account
from tests.engine.helpers import plan, sync

NEXT_DAY = AS_OF + dt.timedelta(days=1)

STAGE_MAPPING = """
object_type: companies
id: {property: spokesync_account_id, column: account_id}
source:
  sql: SELECT *, CASE WHEN employee_count >= 20 THEN 'customer' ELSE 'lead' END AS stage
       FROM accounts
fields:
  - {property: name, type: string, column: name}
  - property: lifecyclestage
    type: enumeration
    column: stage
    forward_only: true
    options: [subscriber, lead, opportunity, customer]
"""


def _refresh(state_db: Path, mapping: MappingSpec, records: list[dict]) -> None:
    with StateStore(state_db) as store:
        store.replace_snapshot_from_hubspot(
            mapping.object_type,
            mapping.id.property,
            records,
            mapping.managed_properties,
            mapping.property_types,
        )


def test_lifecyclestage_never_moves_backwards(
    wh: Warehouse, state_db: Path, write_mapping: Callable[[str, str], MappingSpec]
) -> None:
    mapping = write_mapping("companies", STAGE_MAPPING)
    # A0001 (10 employees) wants 'lead'; A0002 (20) wants 'customer'; A0003 (30) 'customer'.
    wh.write("accounts", [account(1), account(2), account(3), account(4)])
    _refresh(
        state_db,
        mapping,
        [
            # sales moved A0001 to opportunity: 'lead' would be a backward move
            {"id": "1", "properties": {"spokesync_account_id": "A0001", "name": "Account 1",
                                       "lifecyclestage": "opportunity"}},
            # A0002 is a lead in HubSpot: 'customer' is forward
            {"id": "2", "properties": {"spokesync_account_id": "A0002", "name": "Account 2",
                                       "lifecyclestage": "lead"}},
            # A0003 holds a stage the mapping does not rank: it stands
            {"id": "3", "properties": {"spokesync_account_id": "A0003", "name": "Account 3",
                                       "lifecyclestage": "evangelist"}},
        ],
    )  # fmt: skip
    p, changes = plan(state_db, wh.root, mapping, AS_OF)
    assert sorted((c.external_id, c.properties) for c in changes) == [
        ("A0002", {"lifecyclestage": "customer"}),
        ("A0004", {"lifecyclestage": "customer", "name": "Account 4", "spokesync_account_id": "A0004"}),
    ]  # fmt: skip
    assert p.rules.backward_moves_blocked == {"lifecyclestage": 2}
    p.close()


def test_forward_only_needs_ordered_options_and_warehouse_ownership(
    write_mapping: Callable[[str, str], MappingSpec],
) -> None:
    with pytest.raises(MappingError, match="forward_only"):
        write_mapping("bad", STAGE_MAPPING.replace("    forward_only: true", "    forward_only: true\n    owner: hubspot"))  # fmt: skip


DEAL_MAPPING = """
object_type: deals
id: {property: spokesync_subscription_id, column: subscription_id}
source:
  sql: SELECT * FROM subscriptions
       QUALIFY row_number() OVER (PARTITION BY subscription_id ORDER BY date DESC) = 1
fields:
  - {property: dealname, type: string, column: plan}
  - {property: amount, type: number, expr: "round(mrr * 12, 2)", send_with: [deal_currency_code]}
  - {property: deal_currency_code, type: enumeration, column: currency, options: [EUR, USD]}
"""


def _sub(sid: str, mrr: str, currency: str | None) -> dict:
    from decimal import Decimal

    return {
        "subscription_id": sid,
        "account_id": "A0001",
        "plan": "growth",
        "status": "active",
        "seats": 1,
        "mrr": Decimal(mrr),
        "currency": currency,
        "started_on": dt.date(2025, 1, 1),
        "renews_on": None,
        "canceled_on": None,
        "updated_at": dt.datetime(2026, 1, 10, tzinfo=dt.UTC),
    }


def test_amount_goes_out_with_its_currency_or_not_at_all(
    wh: Warehouse, state_db: Path, write_mapping: Callable[[str, str], MappingSpec]
) -> None:
    mapping = write_mapping("deals", DEAL_MAPPING)
    wh.write("subscriptions", [_sub("S1", "100", "EUR"), _sub("S2", "50", None)], day="2026-01-14")
    first = sync(state_db, wh.root, mapping, AS_OF)
    # S2 has no currency: its amount is withheld, the rest of the record goes out.
    assert sorted((c.external_id, c.properties) for c in first) == [
        ("S1", {"amount": "1200", "deal_currency_code": "EUR", "dealname": "growth",
                "spokesync_subscription_id": "S1"}),
        ("S2", {"dealname": "growth", "spokesync_subscription_id": "S2"}),
    ]  # fmt: skip
    # The amount changes, the currency does not: the currency is sent again with it.
    wh.write("subscriptions", [_sub("S1", "110", "EUR"), _sub("S2", "50", None)], day="2026-01-15")
    p, changes = plan(state_db, wh.root, mapping, NEXT_DAY)
    assert [(c.external_id, c.properties) for c in changes] == [
        ("S1", {"amount": "1320", "deal_currency_code": "EUR"})
    ]
    assert (p.rules.withheld, p.rules.companions_added) == ({"amount": 1}, 1)
    p.close()
    # Nothing was pushed; now the currency changes as well: both go out, in one payload.
    wh.write("subscriptions", [_sub("S1", "110", "USD"), _sub("S2", "50", None)], day="2026-01-15")
    p, changes = plan(state_db, wh.root, mapping, NEXT_DAY)
    assert [(c.external_id, c.properties) for c in changes] == [
        ("S1", {"amount": "1320", "deal_currency_code": "USD"})
    ]
    p.close()


GATED_MAPPING = """
object_type: contacts
id: {property: email, column: email}
source:
  sql: SELECT *, 'COMPUTER_SOFTWARE' AS firmo_industry, email_domain(email) AS company_domain
       FROM users
gates:
  enrichment:
    - {check: "NOT is_free_mail(email)", reason: free-mail address}
    - {check: "is_valid_domain(company_domain)", reason: company domain missing or invalid}
reports:
  - {name: no_title, when: "job_title IS NULL", message: no job title}
fields:
  - {property: firstname, type: string, column: first_name}
  - {property: spokesync_industry, type: enumeration, column: firmo_industry,
     options: [COMPUTER_SOFTWARE], gate: enrichment}
"""


def _user(uid: str, email: str, title: str | None = "CTO") -> dict:
    ts = dt.datetime(2026, 1, 10, tzinfo=dt.UTC)
    return {
        "user_id": uid, "account_id": "A0001", "email": email, "first_name": uid,
        "last_name": "X", "job_title": title, "role": "admin", "created_at": ts, "updated_at": ts,
    }  # fmt: skip


def test_gate_withholds_gated_fields_and_lists_failures_with_reasons(
    wh: Warehouse, state_db: Path, write_mapping: Callable[[str, str], MappingSpec]
) -> None:
    mapping = write_mapping("contacts", GATED_MAPPING)
    wh.write(
        "users",
        [
            _user("U1", "ann@acme.io"),
            _user("U2", "bo@gmail.com", None),
            _user("U3", "cy@localhost"),
        ],
    )
    with plan_changes(state_db, wh.root, mapping, AS_OF) as p:
        changes = [c for b in p.batches() for c in b]
        assert {c.external_id: c.properties.get("spokesync_industry") for c in changes} == {
            "ann@acme.io": "COMPUTER_SOFTWARE",
            "bo@gmail.com": None,
            "cy@localhost": None,
        }
        assert p.desired.gated == {"enrichment": 2}
        assert p.desired.gate_samples == [
            ("bo@gmail.com", "enrichment", "free-mail address"),
            ("cy@localhost", "enrichment", "company domain missing or invalid"),
        ]
        assert p.desired.reported == {"no_title": 1}
        assert p.desired.report_samples == {"no_title": ["bo@gmail.com"]}


def test_gated_field_cannot_clear(write_mapping: Callable[[str, str], MappingSpec]) -> None:
    with pytest.raises(MappingError, match="gated field has null_policy skip"):
        write_mapping(
            "bad",
            GATED_MAPPING.replace("gate: enrichment}", "gate: enrichment, null_policy: clear}"),
        )
