"""Every path names a custom object as HubSpot accepts it: by the objectTypeId the schemas API
answered, never by the mapping's bare name (HubSpot answers that with 400 "Unable to infer
object type from: …")."""

from __future__ import annotations

import asyncio

import pytest

from spokesync.hubspot.client import HubSpotClient
from spokesync.hubspot.errors import HubSpotConfigError


def client(api_version: str = "2026-03") -> HubSpotClient:
    return HubSpotClient("http://127.0.0.1:9", "tok", api_version=api_version)


def test_a_custom_object_is_named_by_its_type_id_once_read() -> None:
    c = client()
    c.object_type_ids["erp_subscription"] = "2-7"
    assert c.objects_path("erp_subscription", "/batch/upsert") == (
        "/crm/objects/2026-03/2-7/batch/upsert"
    )
    assert c.properties_path("erp_subscription") == "/crm/properties/2026-03/2-7"
    assert c.associations_path("erp_subscription", "companies", "/labels") == (
        "/crm/associations/2026-03/2-7/companies/labels"
    )
    v3 = client("v3")
    v3.object_type_ids["erp_subscription"] = "2-7"
    assert v3.objects_path("erp_subscription", "/search") == "/crm/v3/objects/2-7/search"
    asyncio.run(c.aclose())
    asyncio.run(v3.aclose())


def test_standard_objects_and_hubspot_forms_pass_as_they_are() -> None:
    c = client("v3")
    for name in ("contacts", "companies", "deals", "tickets", "tasks", "2-9", "p123_vendor"):
        assert c.objects_path(name) == f"/crm/v3/objects/{name}"
    assert c.objects_path("p_vendor") == "/crm/v3/objects/p_vendor"
    asyncio.run(c.aclose())


def test_a_custom_object_never_goes_out_by_its_bare_name() -> None:
    c = client()
    for build in (
        lambda: c.objects_path("erp_subscription", "/batch/read"),
        lambda: c.properties_path("erp_subscription"),
        lambda: c.associations_path("companies", "erp_subscription", "/batch/create"),
    ):
        with pytest.raises(HubSpotConfigError, match="custom object 'erp_subscription'"):
            build()
    asyncio.run(c.aclose())
