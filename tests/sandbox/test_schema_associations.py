"""Custom object schemas: adding an association definition after the schema exists, as
``POST /crm-object-schemas/v3/schemas/{objectType}/associations`` does in HubSpot."""

from __future__ import annotations

from tests.sandbox.conftest import Api


def test_schema_association_is_added_once_and_usable(api: Api) -> None:
    status, created = api.post(
        "/crm-object-schemas/v3/schemas",
        {
            "name": "seat_pack",
            "labels": {"singular": "Seat pack", "plural": "Seat packs"},
            "primaryDisplayProperty": "pack_id",
            "requiredProperties": ["pack_id"],
            "properties": [{"name": "pack_id", "label": "Pack", "hasUniqueValue": True}],
        },
    )
    assert status == 201 and created["associations"] == []
    type_id = created["objectTypeId"]
    assert api.get(f"/crm/v4/associations/{type_id}/deals/labels")[1]["results"] == []

    body = {"fromObjectTypeId": type_id, "toObjectTypeId": "0-3", "name": "seat_pack_to_deal"}
    status, assoc = api.post(f"/crm-object-schemas/2026-03/schemas/{type_id}/associations", body)
    assert status == 201
    assert (assoc["fromObjectTypeId"], assoc["toObjectTypeId"], assoc["name"]) == (
        type_id,
        "0-3",
        "seat_pack_to_deal",
    )
    # Both directions exist, unlabeled USER_DEFINED (the pair's default for a custom object).
    (fwd,) = api.get(f"/crm/v4/associations/{type_id}/deals/labels")[1]["results"]
    (back,) = api.get(f"/crm/v4/associations/deals/{type_id}/labels")[1]["results"]
    assert (fwd["category"], fwd["label"], fwd["typeId"]) == (
        "USER_DEFINED",
        None,
        int(assoc["id"]),
    )
    assert (back["category"], back["label"]) == ("USER_DEFINED", None)
    schema = api.get(f"/crm-object-schemas/v3/schemas/{type_id}")[1]
    assert [(a["fromObjectTypeId"], a["toObjectTypeId"]) for a in schema["associations"]] == [
        (type_id, "0-3")
    ]
    # The same pair again: 409, nothing added.
    assert api.post(f"/crm-object-schemas/v3/schemas/{type_id}/associations", body)[0] == 409
    assert len(api.get(f"/crm/v4/associations/{type_id}/deals/labels")[1]["results"]) == 1
    # Unknown schema, missing fields, a pair that does not touch the schema.
    assert api.post("/crm-object-schemas/v3/schemas/2-999/associations", body)[0] == 404
    assert api.post(f"/crm-object-schemas/v3/schemas/{type_id}/associations", {})[0] == 400
    other = {"fromObjectTypeId": "0-1", "toObjectTypeId": "0-3"}
    assert api.post(f"/crm-object-schemas/v3/schemas/{type_id}/associations", other)[0] == 400

    # Records of the object link to a deal with the type read from the labels API.
    _, deal = api.post(
        "/crm/v3/objects/deals",
        {"properties": {"dealname": "D", "pipeline": "default", "dealstage": "closedwon"}},
    )
    inputs = [{"id": "P1", "idProperty": "pack_id", "properties": {"pack_id": "P1"}}]
    _, up = api.post(f"/crm/v3/objects/{type_id}/batch/upsert", {"inputs": inputs})
    link = {
        "inputs": [
            {
                "from": {"id": up["results"][0]["id"]},
                "to": {"id": deal["id"]},
                "types": [
                    {"associationCategory": "USER_DEFINED", "associationTypeId": fwd["typeId"]}
                ],
            }
        ]
    }
    status, made = api.post(f"/crm/v4/associations/{type_id}/deals/batch/create", link)
    assert status == 201 and len(made["results"]) == 1
