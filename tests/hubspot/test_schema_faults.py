"""The custom object schema create (and its association creates) under every fault kind,
against the sandbox on loopback: a 5xx, a 429, a dropped connection, a 2xx without the schema,
and a create applied whose answer was lost (the client's retry then meets HubSpot's 409 and the
schema read back is the answer). Each ends with exactly one schema, exactly its associations,
and a second ensure that writes nothing."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from spokesync.hubspot.client import HubSpotClient
from spokesync.hubspot.rate_limit import RateLimiter
from spokesync.hubspot.retry import RetryPolicy
from spokesync.hubspot.schemas import SchemaReport, ensure_custom_object
from spokesync.mapping import load_mapping
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.sync.runner import default_mapping_paths
from tests.shared_sandbox import restored

pytestmark = pytest.mark.e2e

SUBSCRIPTIONS = load_mapping(next(p for p in default_mapping_paths() if p.stem == "subscriptions"))
CREATE = r"^/crm-object-schemas/[^/]+/schemas$"
ASSOCIATE = r"^/crm-object-schemas/[^/]+/schemas/[^/]+/associations$"
# Each fault twice in a row on the first schema create (or the first association create).
FAULTS: dict[str, list[Any]] = {
    "503": [503, 503],
    "429": [429],  # HubSpot's TEN_SECONDLY_ROLLING body and Retry-After: the client waits 10 s
    "dropped connection": ["drop", "drop"],
    "empty 2xx": ["empty", "empty"],
    "applied, answer lost (then 409)": ["drop_after_apply"],
    "all in a row": [503, "drop", "empty", "drop_after_apply"],
}


@pytest.fixture
def sandbox(sandbox_server: SandboxProcess) -> SandboxProcess:
    return restored(sandbox_server)  # as just started, 1000 requests / 10 s


def ensure(sandbox: SandboxProcess) -> SchemaReport:
    async def go() -> SchemaReport:
        client = HubSpotClient(
            sandbox.base_url,
            sandbox.token,
            limiter=RateLimiter(1000, interval_s=1.0),  # a 429 waits 1 s, not 10
            retry=RetryPolicy(base_s=0.01, cap_s=0.05, rng=random.Random(3)),
        )
        async with client:
            return await ensure_custom_object(client, SUBSCRIPTIONS, "run-schema")

    return asyncio.run(go())


def held(sandbox: SandboxProcess) -> list[dict[str, Any]]:
    import httpx

    response = httpx.get(
        f"{sandbox.base_url}/crm-object-schemas/v3/schemas",
        headers={"Authorization": f"Bearer {sandbox.token}"},
    )
    assert response.status_code == 200, response.text
    return [s for s in response.json()["results"] if s["name"] == "erp_subscription"]


def writes(sandbox: SandboxProcess) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests(method="POST") if "/crm-object-schemas/" in r["path"]]


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_schema_and_association_creates_under_faults_make_exactly_one(
    sandbox: SandboxProcess, kind: str
) -> None:
    script = FAULTS[kind]
    sandbox.set_faults(writes_only=True, scripts={CREATE: list(script)})
    report = ensure(sandbox)
    assert sandbox.faults()["scripts"] == {CREATE: []}  # every fault was met
    (schema,) = held(sandbox)  # exactly one object, whatever the answers were
    assert report.created and report.object_type_id == schema["objectTypeId"]
    own = schema["objectTypeId"]
    assert sorted((a["fromObjectTypeId"], a["toObjectTypeId"]) for a in schema["associations"]) == [
        (own, "0-2"),
        (own, "0-3"),
    ]  # companies and deals, each once
    assert schema["labels"] == {"singular": "Subscription", "plural": "Subscriptions"}
    props = {p["name"]: p for p in schema["properties"]}
    assert props["spokesync_subscription_id"]["hasUniqueValue"] is True
    statuses = [r["status"] for r in writes(sandbox) if r["path"].endswith("/schemas")]
    if "drop_after_apply" in script:  # the retry of the applied create met HubSpot's 409
        assert 409 in statuses

    assert_quiet_rerun(sandbox)


def assert_quiet_rerun(sandbox: SandboxProcess) -> None:
    sandbox.clear_requests()
    again = ensure(sandbox)
    assert not again.created and again.associations_created == []
    assert writes(sandbox) == []  # found by name, associations complete: nothing written
    assert len(held(sandbox)) == 1


@pytest.mark.parametrize("kind", ["503", "all in a row"])
def test_association_creates_of_a_found_schema_under_faults_add_each_once(
    sandbox: SandboxProcess, kind: str
) -> None:
    import httpx

    from spokesync.hubspot.schemas import schema_body

    # Another environment created the object without its associations.
    body = {**schema_body(SUBSCRIPTIONS), "associatedObjects": []}
    created = httpx.post(
        f"{sandbox.base_url}/crm-object-schemas/v3/schemas",
        json=body,
        headers={"Authorization": f"Bearer {sandbox.token}"},
    )
    assert created.status_code == 201, created.text
    sandbox.set_faults(writes_only=True, scripts={ASSOCIATE: list(FAULTS[kind])})
    report = ensure(sandbox)
    assert sandbox.faults()["scripts"] == {ASSOCIATE: []}  # every fault was met
    assert not report.created and report.associations_created == ["companies", "deals"]
    (schema,) = held(sandbox)
    own = schema["objectTypeId"]
    assert sorted((a["fromObjectTypeId"], a["toObjectTypeId"]) for a in schema["associations"]) == [
        (own, "0-2"),
        (own, "0-3"),
    ]  # each once, whatever the answers were
    assert_quiet_rerun(sandbox)
