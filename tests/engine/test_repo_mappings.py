"""The shipped mappings run against a warehouse with the contract columns and produce the
values a RevOps team expects (exact canonical strings)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from spokesync.desired import desired_table
from spokesync.mapping import MappingSpec, load_mappings
from tests.engine.conftest import AS_OF, TS, Warehouse, account
from tests.reference_tables import write_reference_tables

REPO_MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
DAY = "2026-01-14"


@pytest.fixture
def full_warehouse(wh: Warehouse) -> Warehouse:
    write_reference_tables(wh.root)
    ts = dt.datetime(2026, 1, 14, 9, 30, 15, 250000, tzinfo=dt.UTC)
    wh.write("accounts", [account(1), account(2, industry="RETAIL", domain="www.two.io")])
    wh.write(
        "users",
        [
            {
                "user_id": "U1",
                "account_id": "A0001",
                "email": "Ann@Example.com",
                "first_name": "Ann",
                "last_name": "Lee",
                "job_title": "CTO",
                "role": "admin",
                "created_at": TS,
                "updated_at": TS,
            },
            {
                "user_id": "U2",
                "account_id": "A0001",
                "email": "bo@example.com",
                "first_name": "Bo",
                "last_name": "Ray",
                "job_title": None,
                "role": "member",
                "created_at": TS,
                "updated_at": TS,
            },
        ],
    )
    wh.write(
        "product_usage",
        [
            {
                "event_id": "E1",
                "account_id": "A0001",
                "user_id": "U1",
                "event_type": "login",
                "occurred_at": ts,
                "quantity": 1,
            },
            {
                "event_id": "E2",
                "account_id": "A0001",
                "user_id": "U1",
                "event_type": "feature_used",
                "occurred_at": ts - dt.timedelta(hours=1),
                "quantity": 3,
            },
        ],
        day=DAY,
    )
    wh.write(
        "subscriptions",
        [
            {
                "subscription_id": "S1",
                "account_id": "A0001",
                "plan": "growth",
                "status": "active",
                "seats": 12,
                "mrr": Decimal("1234.50"),
                "currency": "EUR",
                "started_on": dt.date(2025, 3, 1),
                "renews_on": dt.date(2026, 3, 1),
                "canceled_on": None,
                "updated_at": TS,
            },
            {
                "subscription_id": "S2",
                "account_id": "A0002",
                "plan": "starter",
                "status": "canceled",
                "seats": 2,
                "mrr": Decimal("49.00"),
                "currency": "EUR",
                "started_on": dt.date(2025, 1, 1),
                "renews_on": None,
                "canceled_on": dt.date(2026, 1, 10),
                "updated_at": TS,
            },
        ],
        day=DAY,
    )
    wh.write(
        "invoices",
        [
            {
                "invoice_id": "I1",
                "account_id": "A0001",
                "subscription_id": "S1",
                "invoice_date": dt.date(2026, 1, 1),
                "due_date": dt.date(2026, 1, 31),
                "amount": Decimal("1234.50"),
                "currency": "EUR",
                "status": "open",
                "paid_at": None,
            },
            {
                "invoice_id": "I2",
                "account_id": "A0001",
                "subscription_id": "S1",
                "invoice_date": dt.date(2025, 12, 1),
                "due_date": dt.date(2025, 12, 31),
                "amount": Decimal("1234.50"),
                "currency": "EUR",
                "status": "paid",
                "paid_at": TS,
            },
        ],
        day=DAY,
    )
    wh.write(
        "support_tickets",
        [
            {
                "ticket_id": "T1",
                "account_id": "A0001",
                "requester_email": "Ann@Example.com",
                "subject": " Export fails ",
                "description": "CSV export times out",
                "priority": "urgent",
                "status": "pending",
                "channel": "email",
                "created_at": ts,
                "updated_at": ts,
            },
        ],
        day=DAY,
    )
    return wh


def _by_id(table: object, id_col: str = "external_id") -> dict[str, dict[str, object]]:
    rows = table.to_pylist()  # type: ignore[attr-defined]
    return {r[id_col]: r for r in rows}


def test_repo_mappings_produce_expected_values(full_warehouse: Warehouse) -> None:
    specs: dict[str, MappingSpec] = {m.object_type: m for m in load_mappings(REPO_MAPPINGS)}

    companies, stats = desired_table(full_warehouse.root, specs["companies"], AS_OF)
    assert (stats.records, stats.rejected_ids, stats.duplicates) == (2, 0, 0)
    a1 = _by_id(companies)["A0001"]
    assert {
        k: a1[k]
        for k in (
            "domain",
            "industry",
            "spokesync_plan",
            "spokesync_subscription_status",
            "spokesync_mrr",
            "spokesync_seats",
            "spokesync_active_users_30d",
            "spokesync_events_30d",
            "spokesync_last_seen_at",
            "spokesync_open_tickets",
            "spokesync_total_invoiced",
            "spokesync_outstanding_balance",
            "spokesync_customer_since",
            "lifecyclestage",
        )
    } == {
        "domain": "acct1.example.com",
        "industry": "COMPUTER_SOFTWARE",
        "spokesync_plan": "growth",
        "spokesync_subscription_status": "active",
        "spokesync_mrr": "1234.5",
        "spokesync_seats": "12",
        "spokesync_active_users_30d": "1",
        "spokesync_events_30d": "2",
        "spokesync_last_seen_at": "2026-01-14T09:30:15.250Z",
        "spokesync_open_tickets": "1",
        "spokesync_total_invoiced": "2469",
        "spokesync_outstanding_balance": "1234.5",
        "spokesync_customer_since": "2025-03-01",
        "lifecyclestage": "customer",
    }
    a2 = _by_id(companies)["A0002"]
    assert (a2["domain"], a2["spokesync_plan"], a2["spokesync_mrr"], a2["lifecyclestage"]) == (
        "two.io",
        None,
        None,
        "lead",
    )
    # Usage lifecycle and support context: A0001 has 2 users, 1 active (events on Jan 14), one
    # urgent ticket still pending; its owner is not a HubSpot owner → the fallback owner 509.
    health = (
        "spokesync_active_users_7d",
        "spokesync_last_active_date",
        "spokesync_adoption_score",
        "spokesync_product_qualified",
        "spokesync_renewal_risk",
        "spokesync_urgent_tickets_30d",
        "spokesync_last_ticket_at",
        "spokesync_time_since_last_ticket",
        "spokesync_churn_risk",
        "hubspot_owner_id",
    )
    assert {k: a1[k] for k in health} == {
        "spokesync_active_users_7d": "1",
        "spokesync_last_active_date": "2026-01-14",
        "spokesync_adoption_score": "50",
        "spokesync_product_qualified": "false",
        "spokesync_renewal_risk": "false",
        "spokesync_urgent_tickets_30d": "1",
        "spokesync_last_ticket_at": "2026-01-14T09:30:15.250Z",
        "spokesync_time_since_last_ticket": "0-7 days",
        "spokesync_churn_risk": "false",
        "hubspot_owner_id": "509",
    }
    assert {k: a2[k] for k in health} == {
        "spokesync_active_users_7d": "0",
        "spokesync_last_active_date": None,
        "spokesync_adoption_score": "0",
        "spokesync_product_qualified": "false",
        "spokesync_renewal_risk": "false",
        "spokesync_urgent_tickets_30d": "0",
        "spokesync_last_ticket_at": None,
        "spokesync_time_since_last_ticket": None,
        "spokesync_churn_risk": "false",
        "hubspot_owner_id": "509",
    }
    assert stats.reported == {"unknown_owner": 2}
    assert stats.report_samples == {"unknown_owner": ["A0001", "A0002"]}

    contacts, _ = desired_table(full_warehouse.root, specs["contacts"], AS_OF)
    ann = _by_id(contacts)["ann@example.com"]
    assert (ann["firstname"], ann["jobtitle"], ann["spokesync_last_active_date"]) == (
        "Ann",
        "CTO",
        "2026-01-14",
    )
    assert _by_id(contacts)["bo@example.com"]["spokesync_last_active_date"] is None

    deals, _ = desired_table(full_warehouse.root, specs["deals"], AS_OF)
    s1, s2 = _by_id(deals)["S1"], _by_id(deals)["S2"]
    assert (s1["dealname"], s1["pipeline"], s1["dealstage"], s1["amount"], s1["closedate"]) == (
        "Account 1 – Growth",
        "p-sales",
        "st-won",
        "14814",
        "2025-03-01T00:00:00.000Z",
    )
    # Quote to cash: the latest issued invoice (I1, due Jan 31) is open on Jan 15.
    q2c = (
        "deal_currency_code",
        "spokesync_mrr",
        "spokesync_term_start",
        "spokesync_term_end",
        "spokesync_renews_on",
        "spokesync_invoicing_status",
        "spokesync_payment_status",
        "spokesync_last_payment_date",
        "spokesync_last_invoice_id",
    )
    assert {k: s1[k] for k in q2c} == {
        "deal_currency_code": "EUR",
        "spokesync_mrr": "1234.5",
        "spokesync_term_start": "2025-03-01",
        "spokesync_term_end": "2026-02-28",
        "spokesync_renews_on": "2026-03-01",
        "spokesync_invoicing_status": "open",
        "spokesync_payment_status": "awaiting_payment",
        "spokesync_last_payment_date": None,
        "spokesync_last_invoice_id": "I1",
    }
    assert (s2["dealstage"], s2["closedate"], s2["spokesync_renews_on"]) == (
        "st-lost",
        "2026-01-10T00:00:00.000Z",
        None,
    )
    assert (s2["spokesync_term_end"], s2["spokesync_invoicing_status"]) == ("2026-01-10", None)

    tickets, _ = desired_table(full_warehouse.root, specs["tickets"], AS_OF)
    t1 = _by_id(tickets)["T1"]
    assert {
        k: t1[k]
        for k in (
            "subject",
            "hs_pipeline",
            "hs_pipeline_stage",
            "hs_ticket_priority",
            "spokesync_requester_email",
        )
    } == {
        "subject": "Export fails",
        "hs_pipeline": "0",
        "hs_pipeline_stage": "2",
        "hs_ticket_priority": "URGENT",
        "spokesync_requester_email": "ann@example.com",
    }
