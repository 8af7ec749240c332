"""Properties, groups, custom object schemas, owners and pipelines."""

from __future__ import annotations

from tests.sandbox.conftest import Api

PROPS = "/crm/v3/properties/companies"


def _unique(name: str) -> dict:
    return {
        "name": name,
        "label": name,
        "type": "string",
        "fieldType": "text",
        "groupName": "companyinformation",
        "hasUniqueValue": True,
    }


def test_default_catalog_has_revops_properties(api: Api) -> None:
    status, body = api.get(PROPS)
    names = {p["name"]: p for p in body["results"]}
    assert status == 200
    assert {
        "name",
        "domain",
        "industry",
        "numberofemployees",
        "annualrevenue",
        "lifecyclestage",
        "hubspot_owner_id",
        "createdate",
        "hs_lastmodifieddate",
    } <= set(names)
    assert {"value": "COMPUTER_SOFTWARE"}.items() <= next(
        o for o in names["industry"]["options"] if o["value"] == "COMPUTER_SOFTWARE"
    ).items()
    ticket_props = {p["name"]: p for p in api.get("/crm/v3/properties/tickets")[1]["results"]}
    assert [o["value"] for o in ticket_props["hs_ticket_priority"]["options"]] == [
        "LOW",
        "MEDIUM",
        "HIGH",
        "URGENT",
    ]


def test_create_property_then_duplicate_is_409(api: Api) -> None:
    status, body = api.post(PROPS, _unique("erp_id"))
    assert status == 201
    assert (body["name"], body["hasUniqueValue"], body["hubspotDefined"]) == ("erp_id", True, False)
    assert api.get(f"{PROPS}/erp_id")[1]["name"] == "erp_id"
    status, body = api.post(PROPS, _unique("erp_id"))
    assert (status, body["category"]) == (409, "OBJECT_ALREADY_EXISTS")


def test_at_most_ten_unique_properties_per_object(api: Api) -> None:
    for i in range(10):
        assert api.post(PROPS, _unique(f"u{i}"))[0] == 201
    status, body = api.post(PROPS, _unique("u10"))
    assert status == 400 and body["category"] == "VALIDATION_ERROR"
    assert sum(p["hasUniqueValue"] for p in api.get(PROPS)[1]["results"]) == 10


def test_property_type_and_field_type_are_validated(api: Api) -> None:
    bad = [
        {
            "name": "x",
            "label": "X",
            "type": "text",
            "fieldType": "text",
            "groupName": "companyinformation",
        },
        {
            "name": "x",
            "label": "X",
            "type": "number",
            "fieldType": "text",
            "groupName": "companyinformation",
        },
        {
            "name": "x",
            "label": "X",
            "type": "enumeration",
            "fieldType": "select",
            "groupName": "companyinformation",
        },
        {"name": "x", "label": "X", "type": "string", "fieldType": "text", "groupName": "nope"},
        {"label": "X", "type": "string", "fieldType": "text", "groupName": "companyinformation"},
    ]
    for body in bad:
        status, answer = api.post(PROPS, body)
        assert (status, answer["category"]) == (400, "VALIDATION_ERROR"), body


def test_groups(api: Api) -> None:
    status, body = api.post(f"{PROPS}/groups", {"name": "revops", "label": "RevOps"})
    assert status == 201
    assert "revops" in [g["name"] for g in api.get(f"{PROPS}/groups")[1]["results"]]
    assert (
        api.post(
            PROPS,
            {
                "name": "health",
                "label": "Health",
                "type": "number",
                "fieldType": "number",
                "groupName": "revops",
            },
        )[0]
        == 201
    )


def test_custom_object_schema_and_records_by_id_and_fqn(api: Api) -> None:
    schema = {
        "name": "subscription",
        "labels": {"singular": "Subscription", "plural": "Subscriptions"},
        "primaryDisplayProperty": "sub_id",
        "requiredProperties": ["sub_id"],
        "properties": [
            {"name": "sub_id", "label": "Sub", "hasUniqueValue": True},
            {"name": "mrr", "label": "MRR", "type": "number", "fieldType": "number"},
        ],
        "associatedObjects": ["COMPANY"],
    }
    status, created = api.post("/crm-object-schemas/v3/schemas", schema)
    assert status == 201
    type_id = created["objectTypeId"]
    assert type_id.startswith("2-") and created["fullyQualifiedName"] == "p12345678_subscription"
    assert [
        s["objectTypeId"] for s in api.get("/crm-object-schemas/2026-03/schemas")[1]["results"]
    ] == [type_id]
    assert api.post("/crm-object-schemas/v3/schemas", schema)[0] == 409
    inputs = [{"id": "S1", "idProperty": "sub_id", "properties": {"mrr": "99.90"}}]
    status, body = api.post(f"/crm/v3/objects/{type_id}/batch/upsert", {"inputs": inputs})
    assert (status, body["results"][0]["properties"]["mrr"]) == (200, "99.9")
    status, body = api.get(
        "/crm/v3/objects/p12345678_subscription/S1?idProperty=sub_id&properties=mrr"
    )
    assert (status, body["properties"]["mrr"]) == (200, "99.9")
    assert (
        api.post(f"/crm/v3/objects/{type_id}", {"properties": {"mrr": "1"}})[0] == 400
    )  # sub_id required
    _, labels = api.get(f"/crm/v4/associations/{type_id}/companies/labels")
    assert len(labels["results"]) == 1


def test_owners_and_pipelines(api: Api) -> None:
    status, owners = api.get("/crm/v3/owners")
    assert status == 200 and len(owners["results"]) == 6
    owner_id = owners["results"][0]["id"]
    assert api.get(f"/crm/v3/owners/{owner_id}")[1]["email"] == owners["results"][0]["email"]
    _, deals = api.get("/crm/v3/pipelines/deals")
    assert [p["id"] for p in deals["results"]] == ["default", "renewals"]
    assert "closedwon" in [s["id"] for s in deals["results"][0]["stages"]]
    _, tickets = api.get("/crm/v3/pipelines/tickets/0/stages")
    assert [s["id"] for s in tickets["results"]] == ["1", "2", "3", "4"]
    status, body = api.post(
        "/crm/v3/objects/companies", {"properties": {"name": "O", "hubspot_owner_id": "1"}}
    )
    assert status == 400 and body["errors"][0]["code"] == "INVALID_OPTION"
    assert (
        api.post(
            "/crm/v3/objects/companies", {"properties": {"name": "O", "hubspot_owner_id": owner_id}}
        )[0]
        == 201
    )


def test_properties_batch_create_read_archive(api: Api) -> None:
    inputs = [
        _unique("b1"),
        {
            "name": "b2",
            "label": "B2",
            "type": "number",
            "fieldType": "number",
            "groupName": "companyinformation",
        },
        _unique("b1"),
    ]
    status, body = api.post(f"{PROPS}/batch/create", {"inputs": inputs})
    assert status == 207
    assert sorted(p["name"] for p in body["results"]) == ["b1", "b2"]
    assert [(e["category"], e["context"]) for e in body["errors"]] == [
        ("OBJECT_ALREADY_EXISTS", {"name": ["b1"]})
    ]
    status, body = api.post(f"{PROPS}/batch/read", {"inputs": [{"name": "b2"}, {"name": "nope"}]})
    assert (status, [p["name"] for p in body["results"]]) == (207, ["b2"])
    assert body["errors"][0]["context"] == {"name": ["nope"]}
    assert api.post(f"{PROPS}/batch/archive", {"inputs": [{"name": "b2"}]})[0] == 204
    assert api.get(f"{PROPS}/b2")[0] == 404


def test_patch_property_options_and_get_schema_by_each_name(api: Api) -> None:
    prop = {
        "name": "tier",
        "label": "Tier",
        "type": "enumeration",
        "fieldType": "select",
        "groupName": "companyinformation",
        "options": [{"label": "Gold", "value": "gold", "hidden": False}],
    }
    assert api.post(PROPS, prop)[0] == 201
    assert (
        api.post("/crm/v3/objects/companies", {"properties": {"name": "A", "tier": "silver"}})[0]
        == 400
    )
    status, body = api.call(
        "PATCH",
        f"{PROPS}/tier",
        {
            "options": [
                {"label": "Gold", "value": "gold", "hidden": False},
                {"label": "Silver", "value": "silver", "hidden": False},
            ]
        },
    )
    assert (status, [o["value"] for o in body["options"]]) == (200, ["gold", "silver"])
    assert (
        api.post("/crm/v3/objects/companies", {"properties": {"name": "A", "tier": "silver"}})[0]
        == 201
    )
    assert api.call("PATCH", f"{PROPS}/name", {"label": "x"})[0] == 400  # HubSpot-defined
    _, schema = api.post(
        "/crm-object-schemas/v3/schemas",
        {
            "name": "seat",
            "labels": {"singular": "Seat", "plural": "Seats"},
            "properties": [{"name": "code"}],
        },
    )
    for key in (schema["objectTypeId"], "p12345678_seat", "p_seat"):
        status, body = api.get(f"/crm-object-schemas/v3/schemas/{key}")
        assert (status, body["objectTypeId"]) == (200, schema["objectTypeId"])
    # By fully qualified name or type id only, as HubSpot documents (its bare name: unknown).
    assert api.get("/crm-object-schemas/v3/schemas/seat")[0] == 404
    assert api.get("/crm-object-schemas/v3/schemas/nothing")[0] == 404
    status, pipeline = api.get("/crm/v3/pipelines/deals/renewals")
    assert (status, pipeline["label"]) == (200, "Renewals Pipeline")
    assert api.get("/crm/v3/pipelines/deals/nope")[0] == 404


def test_a_custom_object_is_addressed_as_hubspot_accepts_never_by_its_bare_name(api: Api) -> None:
    """HubSpot accepts a custom object's objectTypeId (2-…), fully qualified name
    (p{portal}_{name}) or short-hand p_{name} in every path; its bare name gets 400 "Unable to
    infer object type from: …" with no category (since June 2025; docs/sandbox.md)."""
    schema = {
        "name": "vendor",
        "labels": {"singular": "Vendor", "plural": "Vendors"},
        "primaryDisplayProperty": "vendor_id",
        "requiredProperties": ["vendor_id"],
        "properties": [{"name": "vendor_id", "label": "Vendor id", "hasUniqueValue": True}],
        "associatedObjects": ["COMPANY"],
    }
    status, created = api.post("/crm-object-schemas/v3/schemas", schema)
    assert status == 201
    type_id = created["objectTypeId"]
    status, rec = api.post(f"/crm/v3/objects/{type_id}", {"properties": {"vendor_id": "V1"}})
    assert status == 201
    for name in (type_id, "p12345678_vendor", "p_vendor", "P_VENDOR"):
        status, body = api.get(f"/crm/v3/objects/{name}/{rec['id']}?properties=vendor_id")
        assert (status, body["properties"]["vendor_id"]) == (200, "V1"), name
        assert api.get(f"/crm/v3/properties/{name}/vendor_id")[0] == 200, name
        assert api.get(f"/crm/v4/associations/{name}/companies/labels")[0] == 200, name
    for call, path, name in (
        ("GET", f"/crm/v3/objects/vendor/{rec['id']}", "vendor"),
        ("POST", "/crm/v3/objects/vendor/batch/upsert", "vendor"),
        ("POST", "/crm/objects/2026-03/vendor/search", "vendor"),
        ("GET", "/crm/v3/properties/vendor", "vendor"),
        ("GET", "/crm/v4/associations/vendor/companies/labels", "vendor"),
        ("GET", "/crm/v3/objects/vendors", "vendors"),  # nor by its plural label
    ):
        status, body = api.call(call, path, {"inputs": []} if call == "POST" else None)
        assert status == 400, path
        assert body == {
            "status": "error",
            "message": f"Unable to infer object type from: {name}",
            "correlationId": api.last.headers["X-HubSpot-Correlation-Id"],
        }, path
    # The schema's own name still makes a second create a conflict.
    assert api.post("/crm-object-schemas/v3/schemas", schema)[0] == 409
