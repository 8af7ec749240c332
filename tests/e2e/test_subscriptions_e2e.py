"""Subscriptions as a HubSpot custom object, end to end against the sandbox on the generated
fixture warehouse: the schema is created once through the schemas API from the mapping (a lost
answer and the client's retry do not make two), or found by name and completed; records are
addressed by the objectTypeId HubSpot assigned and upserted by the unique subscription id;
association type ids come from the labels API. Expected values are written by hand."""

from __future__ import annotations

import httpx
import pytest

from spokesync.mapping.loader import load_mappings
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.sync.runner import SyncOptions, default_mapping_paths, run_sync

pytestmark = pytest.mark.e2e
OBJECT = "erp_subscription"


def api(sandbox: SandboxProcess, method: str, path: str, **kw: object) -> httpx.Response:
    return httpx.request(
        method,
        f"{sandbox.base_url}{path}",
        headers={"Authorization": f"Bearer {sandbox.token}"},
        **kw,  # type: ignore[arg-type]
    )


def schemas(sandbox: SandboxProcess) -> list[dict]:
    response = api(sandbox, "GET", "/crm-object-schemas/v3/schemas")
    assert response.status_code == 200, response.text
    return [s for s in response.json()["results"] if s["name"] == OBJECT]


def by_key(sandbox: SandboxProcess, object_type: str, key: str) -> dict[str, dict]:
    return {r["properties"][key]: r for r in sandbox.export(object_type)}


def unlabeled_type(sandbox: SandboxProcess, from_type: str, to_type: str) -> int:
    response = api(sandbox, "GET", f"/crm/v4/associations/{from_type}/{to_type}/labels")
    assert response.status_code == 200, response.text
    (t,) = [t for t in response.json()["results"] if t["label"] is None]
    return int(t["typeId"])


def writes(sandbox: SandboxProcess) -> list[dict]:
    return [
        r
        for r in sandbox.requests(method="POST")
        if not r["path"].endswith(("/batch/read", "/search"))
    ]


MANAGED = (
    "spokesync_subscription_id",
    "spokesync_subscription_name",
    "spokesync_status",
    "spokesync_plan",
    "spokesync_seats",
    "spokesync_mrr",
    "spokesync_currency",
    "spokesync_started_on",
    "spokesync_renews_on",
    "spokesync_canceled_on",
    "spokesync_account_id",
)


def test_subscriptions_custom_object_created_once_exact_state_links_and_quiet_rerun(
    fixed_settings: Settings, sandbox: SandboxProcess
) -> None:
    # The schema create is applied but its answer is lost: the client retries, meets 409,
    # and the sync reads the schemas back instead of creating a second object.
    sandbox.set_faults(
        route_pattern=r"^/crm-object-schemas/[^/]+/schemas$", writes_only=True, next=["drop_after_apply"]
    )  # fmt: skip
    first = run_sync(fixed_settings)
    assert first.ok, first.to_text()
    sandbox.set_faults()

    (schema,) = schemas(sandbox)
    type_id = schema["objectTypeId"]
    assert type_id.startswith("2-")
    assert schema["labels"] == {"singular": "Subscription", "plural": "Subscriptions"}
    assert schema["primaryDisplayProperty"] == "spokesync_subscription_name"
    assert schema["requiredProperties"] == [
        "spokesync_subscription_id",
        "spokesync_subscription_name",
    ]
    props = {p["name"]: p for p in schema["properties"]}
    assert set(MANAGED) <= set(props)
    assert props["spokesync_subscription_id"]["hasUniqueValue"] is True
    assert {(a["fromObjectTypeId"], a["toObjectTypeId"]) for a in schema["associations"]} == {
        (type_id, "0-2"),
        (type_id, "0-3"),
    }
    creates = [
        r for r in sandbox.requests(method="POST") if r["path"].endswith("/schemas")
    ]  # the lost answer, then the retry HubSpot refused with 409
    assert [r["status"] for r in creates][-1] == 409
    summary = next(o for o in first.objects if o.object_type == OBJECT)
    assert summary.custom_object is not None and summary.custom_object.object_type_id == type_id
    # Every record call named the object by the objectTypeId HubSpot gave it, never its name.
    paths = [r["path"] for r in sandbox.requests()]
    assert any(f"/objects/2026-03/{type_id}/batch/upsert" in p for p in paths)
    assert not [p for p in paths if f"/{OBJECT}" in p]

    subs = by_key(sandbox, type_id, "spokesync_subscription_id")
    assert len(subs) == 40  # one per ERP subscription of the 40 accounts
    companies = by_key(sandbox, "companies", "spokesync_account_id")
    deals = by_key(sandbox, "deals", "spokesync_subscription_id")
    to_company = unlabeled_type(sandbox, type_id, "companies")
    to_deal = unlabeled_type(sandbox, type_id, "deals")

    # SUB-000028: Maple Logic Ltd's active Scale subscription, 117 seats, CHF 4,680 a month,
    # started 2025-10-12, renews 2027-01-01.
    active = subs["SUB-000028"]
    assert {k: active["properties"].get(k) for k in MANAGED} == {
        "spokesync_subscription_id": "SUB-000028",
        "spokesync_subscription_name": "Maple Logic Ltd – Scale (SUB-000028)",
        "spokesync_status": "active",
        "spokesync_plan": "scale",
        "spokesync_seats": "117",
        "spokesync_mrr": "4680",
        "spokesync_currency": "CHF",
        "spokesync_started_on": "2025-10-12",
        "spokesync_renews_on": "2027-01-01",
        "spokesync_canceled_on": None,
        "spokesync_account_id": "ACC-000028",
    }
    assert active["associations"]["companies"] == [
        {"id": companies["ACC-000028"]["id"], "types": [to_company]}
    ]
    assert active["associations"]["deals"] == [
        {"id": deals["SUB-000028"]["id"], "types": [to_deal]}
    ]
    # SUB-000003: Vertex Health LLC's Enterprise subscription, canceled on 2026-01-01 (no
    # renewal, 0 MRR, billed in JPY).
    canceled = subs["SUB-000003"]
    assert {k: canceled["properties"].get(k) for k in MANAGED} == {
        "spokesync_subscription_id": "SUB-000003",
        "spokesync_subscription_name": "Vertex Health LLC – Enterprise (SUB-000003)",
        "spokesync_status": "canceled",
        "spokesync_plan": "enterprise",
        "spokesync_seats": "28",
        "spokesync_mrr": "0",
        "spokesync_currency": "JPY",
        "spokesync_started_on": "2024-12-31",
        "spokesync_renews_on": None,
        "spokesync_canceled_on": "2026-01-01",
        "spokesync_account_id": "ACC-000003",
    }
    assert [x["id"] for x in canceled["associations"]["companies"]] == [
        companies["ACC-000003"]["id"]
    ]
    assert [x["id"] for x in canceled["associations"]["deals"]] == [deals["SUB-000003"]["id"]]
    assert [(c.kind, c.desired, c.confirmed) for c in summary.completeness] == [
        (f"{OBJECT}→companies", 40, 40),
        (f"{OBJECT}→deals", 40, 40),
    ]

    # A rerun finds the schema, writes nothing and creates no schema, property or link.
    sandbox.clear_requests()
    again = run_sync(fixed_settings)
    assert again.ok, again.to_text()
    assert writes(sandbox) == []
    assert len(schemas(sandbox)) == 1


def test_an_existing_schema_is_reused_and_completed(
    fixed_settings: Settings, sandbox: SandboxProcess
) -> None:
    # Someone made the object before: only its id and name, no associations.
    made = api(
        sandbox,
        "POST",
        "/crm-object-schemas/v3/schemas",
        json={
            "name": OBJECT,
            "labels": {"singular": "Subscription", "plural": "Subscriptions"},
            "primaryDisplayProperty": "spokesync_subscription_name",
            "requiredProperties": ["spokesync_subscription_id"],
            "properties": [
                {"name": "spokesync_subscription_id", "label": "Subscription ID", "hasUniqueValue": True},
                {"name": "spokesync_subscription_name", "label": "Name"},
            ],
        },
    )  # fmt: skip
    assert made.status_code == 201, made.text
    type_id = made.json()["objectTypeId"]
    sandbox.clear_requests()

    # Only what subscriptions link to (deals' billing contacts wait for contacts: not synced).
    paths = [m.path for m in load_mappings(default_mapping_paths())]
    chosen = [p for p in paths if p.stem in ("companies", "deals", "subscriptions")]
    first = run_sync(fixed_settings, SyncOptions(mapping_paths=chosen))
    assert first.ok, first.to_text()
    (schema,) = schemas(sandbox)
    assert schema["objectTypeId"] == type_id  # reused, not a second object
    assert not [r for r in sandbox.requests(method="POST") if r["path"].endswith("/schemas")]
    added = sorted(
        r["path"].rsplit("/", 2)[-2]
        for r in sandbox.requests(method="POST")
        if r["path"].endswith("/associations") and "schemas" in r["path"]
    )
    assert added == [type_id, type_id]  # one association each to companies and deals
    assert set(MANAGED) <= {p["name"] for p in schema["properties"]}  # missing ones added
    subs = by_key(sandbox, type_id, "spokesync_subscription_id")
    assert len(subs) == 40
    assert subs["SUB-000028"]["properties"]["spokesync_mrr"] == "4680"
    assert len(subs["SUB-000028"]["associations"]["deals"]) == 1
