"""Quote to cash and support context against the sandbox, on the generated fixture warehouse:
the exact HubSpot state of chosen records (expected values written by hand), the canonical
events and value history behind them, `explain`, and a rerun that sends nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from spokesync.completeness import latest_completeness
from spokesync.explain import explain
from spokesync.mapping.loader import load_mappings
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.state.store import StateStore
from spokesync.sync.runner import default_mapping_paths, latest_partition, run_sync

pytestmark = pytest.mark.e2e
BY_TYPE = {m.object_type: m for m in load_mappings(default_mapping_paths())}


BILLING_CONTACT = "alan.novak.92@maplelogic28.de"  # ACC-000028's first admin (by hand)


def sandbox_labels(sandbox: SandboxProcess, from_type: str, to_type: str) -> list[dict]:
    import httpx

    response = httpx.get(
        f"{sandbox.base_url}/crm/v4/associations/{from_type}/{to_type}/labels",
        headers={"Authorization": f"Bearer {sandbox.token}"},
    )
    assert response.status_code == 200, response.text
    return response.json()["results"]


def by_key(sandbox: SandboxProcess, object_type: str, key: str) -> dict[str, dict]:
    return {r["properties"][key]: r for r in sandbox.export(object_type)}


def writes(sandbox: SandboxProcess) -> list[dict]:
    return [
        r
        for r in sandbox.requests(method="POST")
        if "/batch/" in r["path"] and not r["path"].endswith(("/batch/read", "/search"))
    ]


def test_quote_to_cash_and_support_context_exact_state_events_explain_and_quiet_rerun(
    fixed_settings: Settings, sandbox: SandboxProcess
) -> None:
    settings = fixed_settings
    newest = latest_partition(settings.warehouse_dir)
    d1 = newest - dt.timedelta(days=2)  # the fixture's first day: the initial ERP export
    first = run_sync(settings)
    assert first.ok, first.to_text()

    # -- association completeness per kind of link, in the summary and in the state store
    # (40 accounts; 21 of them have an admin user, their deals' billing contact; 3 tickets;
    # no usage-threshold task: three days of usage hold no whole 7-day window; 40 subscriptions).
    expected = {
        "contacts→companies": (133, 133, 0),
        "deals→companies": (40, 40, 0),
        "deals→contacts (Billing contact)": (21, 21, 0),
        "tickets→companies": (3, 3, 0),
        "tickets→contacts": (3, 3, 0),
        "tasks→companies": (0, 0, 0),
        "erp_subscription→companies": (40, 40, 0),  # the subscriptions custom object
        "erp_subscription→deals": (40, 40, 0),
    }
    # The 17 accounts with 3+ users on Jan 1 and the 10 reaching 3 on Jan 2 or 3 "cross" only
    # because the warehouse starts on Jan 1: no task for any of them (docs/workflows.md).
    (tasks,) = first.tasks
    assert (tasks.intents, tasks.created, tasks.incomplete_window, tasks.stale) == (0, 0, 27, 0)
    measured = [c for o in first.objects for c in o.completeness]
    measured += [t.completeness for t in first.tasks if t.completeness is not None]
    assert {c.kind: (c.desired, c.confirmed, c.waiting) for c in measured} == expected
    assert {
        c.kind: (c.desired, c.confirmed, c.waiting) for c in latest_completeness(settings.state_db)
    } == expected
    assert (
        "    links: deals→companies 40/40 (100.0%); deals→contacts (Billing contact) 21/21 "
        "(100.0%)" in first.to_text()
    )

    # -- quote to cash: SUB-000028 (ACC-000028, active, CHF 4,680 MRR), invoice paid on D1.
    deals = by_key(sandbox, "deals", "spokesync_subscription_id")
    companies = by_key(sandbox, "companies", "spokesync_account_id")
    deal = deals["SUB-000028"]
    props = deal["properties"]
    assert {
        k: props.get(k)
        for k in (
            "amount",
            "deal_currency_code",
            "pipeline",
            "dealstage",
            "spokesync_mrr",
            "spokesync_plan",
            "spokesync_invoicing_status",
            "spokesync_payment_status",
            "spokesync_last_invoice_id",
        )
    } == {
        "amount": "56160",
        "deal_currency_code": "CHF",
        "pipeline": "default",  # the sandbox's "Sales Pipeline", read from its pipelines API
        "dealstage": "closedwon",
        "spokesync_mrr": "4680",
        "spokesync_plan": "scale",
        "spokesync_invoicing_status": "paid",
        "spokesync_payment_status": "paid",
        "spokesync_last_invoice_id": f"INV-{d1:%Y%m%d}-000028",
    }
    renews = d1 + dt.timedelta(days=365)
    assert props["spokesync_last_payment_date"] == d1.isoformat()
    assert props["spokesync_renews_on"] == renews.isoformat()
    assert props["spokesync_term_end"] == (renews - dt.timedelta(days=1)).isoformat()
    links = deal["associations"]["companies"]
    assert [(x["id"], 341 in x["types"]) for x in links] == [(companies["ACC-000028"]["id"], True)]
    # Its billing contact (ACC-000028's first admin) carries the "Billing contact" label,
    # created once through the labels API.
    label_types = [
        t for t in sandbox_labels(sandbox, "deals", "contacts") if t["label"] == "Billing contact"
    ]
    assert [t["category"] for t in label_types] == ["USER_DEFINED"]
    (billing,) = deal["associations"]["contacts"]
    assert label_types[0]["typeId"] in billing["types"] and 3 in billing["types"]
    contact_email = {r["id"]: r["properties"]["email"] for r in sandbox.export("contacts")}
    assert contact_email[billing["id"]] == BILLING_CONTACT
    # Every deal went out with its currency.
    assert all(d["properties"].get("deal_currency_code") for d in deals.values())

    # -- support context: each of the three tickets is linked to its company and to the
    # contact who raised it (default ticket → contact type 16).
    contacts = {r["id"]: r["properties"]["email"] for r in sandbox.export("contacts")}
    tickets = sandbox.export("tickets")
    assert len(tickets) == 3
    for t in tickets:
        requester = t["properties"]["spokesync_requester_email"]
        (link,) = t["associations"]["contacts"]
        assert contacts[link["id"]] == requester and 16 in link["types"]
        account = t["properties"]["spokesync_account_id"]
        assert [x["id"] for x in t["associations"]["companies"]] == [companies[account]["id"]]
    # ACC-000025's one ticket (D3) is urgent and still open.
    health = companies["ACC-000025"]["properties"]
    assert (
        health["spokesync_open_tickets"],
        health["spokesync_urgent_tickets_30d"],
        health["spokesync_time_since_last_ticket"],
    ) == ("1", "1", "0-7 days")

    # -- canonical events behind the writes, linked from the value history.
    with StateStore(settings.state_db) as store:
        events = {e["type"]: e for e in store.events.events("deals", "SUB-000028")}
        history = store.history.entries("deals", "SUB-000028", "spokesync_invoicing_status")
    assert set(events) == {"invoice_paid", "subscription_activated"}
    paid = events["invoice_paid"]
    assert paid["version"] == 1 and paid["run_id"] == first.run_id
    assert paid["source_rows"] == [{"table": "invoices", "key": f"INV-{d1:%Y%m%d}-000028"}]
    assert paid["external_ids"] == {"deals": "SUB-000028"}
    assert [h.event_id for h in history] == [paid["event_id"]]

    # -- explain: equal now, the last write and the event behind it.
    why = explain(settings, BY_TYPE["deals"], "SUB-000028", newest)
    rows = {p.property: p for p in why.properties}
    assert rows["amount"].decision == "equal"
    assert rows["amount"].rule == "warehouse-owned; null skip; sent with deal_currency_code"
    status = rows["spokesync_invoicing_status"]
    assert status.last_write is not None and status.last_write.run_id == first.run_id
    assert status.last_write.event is not None
    assert status.last_write.event["type"] == "invoice_paid"
    assert status.last_write.correlation_id  # HubSpot's id of the batch that confirmed it
    text = why.to_text()
    assert "invoice_paid v1" in text and f"invoices:INV-{d1:%Y%m%d}-000028" in text

    # -- a rerun sends nothing at all.
    sandbox.clear_requests()
    again = run_sync(settings)
    assert again.ok
    assert writes(sandbox) == []
    assert sum(o.push.write_calls for o in again.objects if o.push) == 0
    labels = [t for t in sandbox_labels(sandbox, "deals", "contacts") if t["label"]]
    assert [t["label"] for t in labels] == ["Billing contact"]  # not created twice
