"""ensure-properties and full-refresh paging against a scripted HubSpot."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from spokesync.hubspot.client import HubSpotClient
from spokesync.hubspot.properties import (
    PropertyMismatchError,
    PropertySpec,
    ensure_properties,
    specs_from_mapping,
)
from spokesync.hubspot.rate_limit import RateLimiter
from spokesync.hubspot.read import chunk_properties, read_all

from .fakes import TOKEN, FakeClock


class PropertiesFake:
    def __init__(self, props: list[dict[str, Any]], groups: list[str]) -> None:
        self.props = {p["name"]: p for p in props}
        self.groups = list(groups)
        self.calls: list[tuple[str, str, Any]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        path = request.url.path
        self.calls.append((request.method, path, body))
        if path.endswith("/groups"):
            if request.method == "GET":
                return httpx.Response(200, json={"results": [{"name": g} for g in self.groups]})
            self.groups.append(body["name"])
            return httpx.Response(201, json=body)
        if request.method == "GET":
            return httpx.Response(200, json={"results": list(self.props.values())})
        if request.method == "POST":
            self.props[body["name"]] = body
            return httpx.Response(201, json=body)
        name = path.rsplit("/", 1)[1]
        self.props[name] |= body
        return httpx.Response(200, json=self.props[name])


def client_for(fake: PropertiesFake) -> HubSpotClient:
    clock = FakeClock()
    return HubSpotClient(
        "http://hubspot.test",
        TOKEN,
        transport=httpx.MockTransport(fake.handle),
        limiter=RateLimiter(100, clock=clock, sleep=clock.sleep),
        sleep=clock.sleep,
    )


SPECS = [
    PropertySpec(
        "spokesync_account_id", "string", "text", label="Account ID", unique=True, group="spokesync"
    ),
    PropertySpec(
        "spokesync_plan", "enumeration", "select", options=("starter", "growth"), group="spokesync"
    ),
    PropertySpec("spokesync_active", "bool", "booleancheckbox"),
    PropertySpec("name", "string", "text"),
]


def run(fake: PropertiesFake, specs=SPECS, **kw):
    async def go():
        async with client_for(fake) as client:
            return await ensure_properties(client, specs, "companies", **kw)

    return asyncio.run(go())


def test_creates_missing_properties_and_group() -> None:
    fake = PropertiesFake(
        [{"name": "name", "type": "string", "fieldType": "text"}], ["companyinformation"]
    )
    report = run(fake)
    assert report.created == ["spokesync_account_id", "spokesync_plan", "spokesync_active"]
    assert report.existing == ["name"] and report.groups_created == ["spokesync"]
    posts = [(p, b) for m, p, b in fake.calls if m == "POST"]
    assert posts[0] == (
        "/crm/properties/2026-03/companies/groups",
        {"name": "spokesync", "label": "spokesync", "displayOrder": -1},
    )
    assert posts[1] == (
        "/crm/properties/2026-03/companies",
        {
            "name": "spokesync_account_id",
            "label": "Account ID",
            "type": "string",
            "fieldType": "text",
            "groupName": "spokesync",
            "hasUniqueValue": True,
        },
    )
    assert [o["value"] for o in posts[2][1]["options"]] == ["starter", "growth"]
    assert posts[3][1]["groupName"] == "companyinformation"
    assert [o["value"] for o in posts[3][1]["options"]] == ["true", "false"]
    # Second run: nothing to do.
    again = run(fake)
    assert again.created == [] and again.groups_created == [] and len(again.existing) == 4


def test_type_mismatch_fails_naming_property_and_both_types_before_any_change() -> None:
    fake = PropertiesFake(
        [{"name": "name", "type": "number", "fieldType": "number"}], ["companyinformation"]
    )
    with pytest.raises(PropertyMismatchError) as info:
        run(fake)
    assert "companies.name: HubSpot has type 'number'" in str(info.value)
    assert "mapping says 'string'" in str(info.value)
    assert [m for m, _, _ in fake.calls] == ["GET"]


def test_existing_non_unique_id_property_is_an_error() -> None:
    fake = PropertiesFake(
        [{"name": "spokesync_account_id", "type": "string", "fieldType": "text"}], []
    )
    with pytest.raises(PropertyMismatchError, match="without hasUniqueValue"):
        run(fake)


def test_missing_enumeration_options_are_added_and_dry_run_changes_nothing() -> None:
    existing = [
        {
            "name": "spokesync_account_id",
            "type": "string",
            "fieldType": "text",
            "hasUniqueValue": True,
        },
        {
            "name": "spokesync_plan",
            "type": "enumeration",
            "fieldType": "select",
            "options": [
                {"label": "Starter", "value": "starter", "hidden": False, "displayOrder": 0}
            ],
        },
        {"name": "spokesync_active", "type": "bool", "fieldType": "booleancheckbox"},
        {"name": "name", "type": "string", "fieldType": "text"},
    ]
    fake = PropertiesFake(existing, [])
    dry = run(fake, dry_run=True)
    assert dry.options_added == {"spokesync_plan": ["growth"]}
    assert [m for m, _, _ in fake.calls] == ["GET"]
    report = run(fake)
    assert report.options_added == {"spokesync_plan": ["growth"]}
    assert [o["value"] for o in fake.props["spokesync_plan"]["options"]] == ["starter", "growth"]


def test_specs_from_real_mapping_files() -> None:
    mapping_mod = pytest.importorskip(
        "spokesync.mapping.loader", reason="mapping loader not landed"
    )
    root = Path(__file__).resolve().parents[2] / "mappings"
    if not (root / "contacts.yaml").exists():
        pytest.skip("mappings/contacts.yaml not present")
    contacts = mapping_mod.load_mapping(root / "contacts.yaml")
    specs = specs_from_mapping(contacts)
    assert not any(s.unique for s in specs)  # contacts upsert by the built-in email
    assert [s.name for s in specs] == [f.property for f in contacts.fields]
    companies = mapping_mod.load_mapping(root / "companies.yaml")
    first = specs_from_mapping(companies)[0]
    assert (first.name, first.unique) == (companies.id.property, True)


def test_read_all_follows_paging_with_the_property_list() -> None:
    pages = {
        None: {
            "results": [{"id": "1", "properties": {"a": "x"}}],
            "paging": {"next": {"after": "2"}},
        },
        "2": {"results": [{"id": "2", "properties": {"a": "y"}}]},
    }
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=pages[request.url.params.get("after")])

    async def go():
        clock = FakeClock()
        async with HubSpotClient(
            "http://h.test",
            TOKEN,
            transport=httpx.MockTransport(handle),
            limiter=RateLimiter(clock=clock, sleep=clock.sleep),
            sleep=clock.sleep,
        ) as client:
            return [r async for r in read_all(client, "deals", ["a", "b"])]

    records = asyncio.run(go())
    assert [r["id"] for r in records] == ["1", "2"]
    assert [r.url.path for r in seen] == ["/crm/objects/2026-03/deals"] * 2
    assert seen[0].url.params["properties"] == "a,b" and seen[0].url.params["limit"] == "100"
    assert seen[1].headers["X-Request-Id"] == "refresh-deals-p2"


def test_read_all_merges_property_chunks() -> None:
    many = [f"prop_{i:04d}" for i in range(800)]
    chunks = chunk_properties(many)
    assert len(chunks) == 2 and sum(chunks, []) == many
    assert all(len(",".join(c)) <= 6000 for c in chunks)

    def handle(request: httpx.Request) -> httpx.Response:
        names = request.url.params["properties"].split(",")
        return httpx.Response(
            200, json={"results": [{"id": "7", "properties": {n: "v" for n in names}}]}
        )

    async def go():
        clock = FakeClock()
        async with HubSpotClient(
            "http://h.test",
            TOKEN,
            transport=httpx.MockTransport(handle),
            limiter=RateLimiter(clock=clock, sleep=clock.sleep),
            sleep=clock.sleep,
        ) as client:
            return [r async for r in read_all(client, "deals", many)]

    (record,) = asyncio.run(go())
    assert sorted(record["properties"]) == many


def test_client_repr_hides_token() -> None:
    fake = PropertiesFake([], [])
    client = client_for(fake)
    assert TOKEN not in repr(client) and "hubspot.test" in repr(client)
    asyncio.run(client.aclose())


def test_associate_dedupes_and_batches_pairs() -> None:
    from spokesync.hubspot.associations import associate

    bodies: list[dict] = []

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        results = [
            {"fromObjectId": i["from"]["id"], "toObjectId": i["to"]["id"]} for i in body["inputs"]
        ]
        return httpx.Response(201, json={"status": "COMPLETE", "results": results})

    async def go():
        clock = FakeClock()
        async with HubSpotClient(
            "http://h.test",
            TOKEN,
            transport=httpx.MockTransport(handle),
            limiter=RateLimiter(clock=clock, sleep=clock.sleep),
            sleep=clock.sleep,
        ) as client:
            pairs = [(str(i), "9") for i in range(5)] + [("1", "9")]
            return await associate(
                client,
                from_type="contacts",
                to_type="companies",
                pairs=pairs,
                association_type_id=279,
                run_id="r",
                batch_size=2,
            )

    report = asyncio.run(go())
    assert (report.pairs_in, report.pairs_sent, report.pairs_ok, report.calls) == (6, 5, 5, 3)
    assert bodies[0]["inputs"][0] == {
        "from": {"id": "0"},
        "to": {"id": "9"},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}],
    }


def test_search_uses_its_own_bucket() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"total": 0, "results": []})

    clock = FakeClock()
    limiter = RateLimiter(100, clock=clock, sleep=clock.sleep, slack_s=0)

    async def go():
        async with HubSpotClient(
            "http://h.test",
            TOKEN,
            transport=httpx.MockTransport(handle),
            limiter=limiter,
            sleep=clock.sleep,
        ) as client:
            for n in range(6):
                await client.search("contacts", {"limit": 1}, request_id=f"s{n}")

    asyncio.run(go())
    assert [r.url.path for r in seen] == ["/crm/objects/2026-03/contacts/search"] * 6
    assert clock.now - 1000.0 == pytest.approx(1.0, abs=1e-5)  # the sixth waited for the second
    assert limiter.window.used(clock.now) == 0
