"""Against a real ``spokesync sandbox`` process: HubSpot's own SDK, persistence across a
restart (and a SIGKILL), rate limits exact under concurrency, and a truly dropped connection."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import httpx
import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    AssociationSpec,
    BatchInputPublicAssociationMultiPost,
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicAssociationMultiPost,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.companies import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchReadInputSimplePublicObjectId,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
)
from hubspot.crm.properties import PropertyCreate

from spokesync.sandbox.launcher import SandboxProcess
from tests.shared_sandbox import restored

pytestmark = pytest.mark.e2e
AUTH = {"Authorization": f"Bearer {SandboxProcess.token}"}


def test_hubspot_sdk_round_trip(sandbox: SandboxProcess) -> None:
    hs = HubSpot(access_token=sandbox.token, host=sandbox.base_url)
    prop = hs.crm.properties.core_api.create(
        "companies",
        PropertyCreate(
            name="erp_id",
            label="ERP id",
            type="string",
            field_type="text",
            group_name="companyinformation",
            has_unique_value=True,
        ),
    )
    assert (prop.name, prop.has_unique_value) == ("erp_id", True)
    inputs = [
        SimplePublicObjectBatchInputUpsert(
            id=f"E{i}",
            id_property="erp_id",
            properties={"name": f"Co {i}", "industry": "COMPUTER_SOFTWARE"},
        )
        for i in range(5)
    ]
    upserted = hs.crm.companies.batch_api.upsert(
        BatchInputSimplePublicObjectBatchInputUpsert(inputs=inputs)
    )
    assert sorted(r.properties["erp_id"] for r in upserted.results) == [f"E{i}" for i in range(5)]
    assert all(r.new for r in upserted.results)
    ids = {r.properties["erp_id"]: r.id for r in upserted.results}

    read = hs.crm.companies.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id=ids["E3"])],
            properties=["name", "industry"],
            properties_with_history=[],
        )
    )
    assert read.results[0].properties["name"] == "Co 3"

    found = hs.crm.companies.search_api.do_search(
        PublicObjectSearchRequest(
            filter_groups=[
                FilterGroup(
                    filters=[Filter(property_name="erp_id", operator="IN", values=["E1", "E2"])]
                )
            ],
            properties=["erp_id"],
            limit=10,
        )
    )
    assert found.total == 2 and sorted(r.properties["erp_id"] for r in found.results) == [
        "E1",
        "E2",
    ]

    names = [p.name for p in hs.crm.properties.core_api.get_all("companies").results]
    assert "erp_id" in names and "industry" in names

    contact = hs.crm.contacts.basic_api.create({"properties": {"email": "sdk@x.com"}})
    created = hs.crm.associations.v4.batch_api.create(
        "contacts",
        "companies",
        BatchInputPublicAssociationMultiPost(
            inputs=[
                PublicAssociationMultiPost(
                    _from={"id": contact.id},
                    to={"id": ids["E0"]},
                    types=[
                        AssociationSpec(
                            association_category="HUBSPOT_DEFINED", association_type_id=1
                        )
                    ],
                )
            ]
        ),
    )
    assert created.results[0].labels == ["Primary"]
    assoc = hs.crm.associations.v4.batch_api.get_page(
        "contacts",
        "companies",
        BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[PublicFetchAssociationsBatchRequest(id=contact.id)]
        ),
    )
    assert [t.to_object_id for t in assoc.results[0].to] == [ids["E0"]]
    assert sorted(a.type_id for a in assoc.results[0].to[0].association_types) == [1, 279]

    stats = sandbox.stats()
    assert stats["records"]["created"] == 6
    assert stats["requests"]["POST /crm/v3/objects/{object_type}/batch/upsert"] == {"200": 1}


def test_state_survives_restart_and_sigkill(tmp_path: Path) -> None:
    with SandboxProcess(tmp_path / "persist.sqlite") as sb:
        with httpx.Client(base_url=sb.base_url, headers=AUTH) as c:
            c.post(
                "/crm/v3/properties/contacts",
                json={
                    "name": "ext_id",
                    "label": "Ext",
                    "type": "string",
                    "fieldType": "text",
                    "groupName": "contactinformation",
                    "hasUniqueValue": True,
                },
            )
            r = c.post(
                "/crm/v3/objects/contacts/batch/upsert",
                json={
                    "inputs": [
                        {"id": "K1", "idProperty": "ext_id", "properties": {"email": "k1@x.com"}}
                    ]
                },
            )
            assert r.status_code == 200
        before = sb.export("contacts")
        sb.kill()
        sb.start()
        assert sb.export("contacts") == before
        with httpx.Client(base_url=sb.base_url, headers=AUTH) as c:
            r = c.post(
                "/crm/v3/objects/contacts/batch/upsert",
                json={
                    "inputs": [
                        {"id": "K1", "idProperty": "ext_id", "properties": {"firstname": "Kay"}}
                    ]
                },
            )
            assert (r.status_code, r.json()["results"][0]["new"]) == (200, False)
        sb.restart()
        [contact] = sb.export("contacts")
        assert contact["properties"]["firstname"] == "Kay" and contact["id"] == before[0]["id"]


def test_rate_limit_is_exact_under_concurrency(tmp_path: Path) -> None:
    limit = 20
    with SandboxProcess(tmp_path / "rl.sqlite", rate_limit=limit) as sb:
        with httpx.Client(
            base_url=sb.base_url, headers=AUTH, limits=httpx.Limits(max_connections=limit + 1)
        ) as c:

            def one(i: int) -> int:
                return c.post(
                    "/crm/v3/objects/contacts/batch/upsert",
                    json={
                        "inputs": [{"id": f"r{i}@x.com", "idProperty": "email", "properties": {}}]
                    },
                ).status_code

            with concurrent.futures.ThreadPoolExecutor(max_workers=limit + 1) as pool:
                statuses = list(pool.map(one, range(limit + 1)))
        assert sorted(statuses) == [200] * limit + [429]
        assert len(sb.export("contacts")) == limit
        assert sb.stats()["rate_limited"] == {"TEN_SECONDLY_ROLLING": 1}


def test_dropped_connection_over_a_real_socket(sandbox: SandboxProcess) -> None:
    sandbox.set_faults(next=["drop", "drop_after_apply"])
    body = {"inputs": [{"id": "x@x.com", "idProperty": "email", "properties": {}}]}
    with httpx.Client(base_url=sandbox.base_url, headers=AUTH) as c:
        with pytest.raises(httpx.TransportError):
            c.post("/crm/v3/objects/contacts/batch/upsert", json=body)
        assert sandbox.export("contacts") == []
        with pytest.raises(httpx.TransportError):
            c.post("/crm/v3/objects/contacts/batch/upsert", json=body)
        assert len(sandbox.export("contacts")) == 1
        assert c.get("/crm/v3/objects/contacts").status_code == 200
    assert sandbox.faults()["next"] == []


def test_restore_makes_a_used_server_as_just_started(sandbox_server: SandboxProcess) -> None:
    """What lets the suite share one server per test process: after ``restore()`` nothing of
    an earlier test is left — records, faults and their scripts, runtime settings, counters,
    the request log, and writes a search lag still hid."""
    sb = restored(sandbox_server)
    faults, config = sb.faults(), sb.configure()
    api = httpx.Client(base_url=sb.base_url, headers=AUTH, timeout=10)
    search = {"filterGroups": [{"filters": [{"propertyName": "name", "operator": "EQ",
                                             "value": "Restore Oy"}]}]}  # fmt: skip

    def create_and_search() -> tuple[str, int]:
        created = api.post("/crm/v3/objects/companies", json={"properties": {"name": "Restore Oy"}})
        assert created.status_code == 201, created.text
        found = api.post("/crm/v3/objects/companies/search", json=search).json()["total"]
        return created.json()["id"], found

    sb.configure(search_lag_ms=600_000, latency_ms=5, rate_limit=7, retry_after=True)
    first_id, found = create_and_search()
    assert found == 0  # hidden by the lag
    sb.set_faults(next=[503], scripts={"/companies$": [502]}, status_probability={500: 0.5})
    assert api.get("/crm/v3/objects/companies").status_code == 503
    assert sb.stats()["faults_injected"] == {"503": 1}

    sb.restore()
    assert (sb.faults(), sb.configure()) == (faults, config)
    assert all(records == [] for records in sb.export().values())
    stats = sb.stats()
    assert (stats["requests_total"], stats["faults_injected"], sb.requests()) == (0, {}, [])
    assert stats["records"] == {"created": 0, "updated": 0, "archived": 0, "written": 0,
                                "by_type": {}}  # fmt: skip
    again_id, found = create_and_search()
    assert again_id == first_id  # ids start again, as on a new server …
    assert found == 1  # … and the old record's pending lag does not hide the new one
    api.close()
