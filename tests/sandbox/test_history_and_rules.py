"""propertiesWithHistory and person edits, lifecyclestage forward-only, PATCH by email, email
and enumeration rules, GDPR delete, association ids that do not exist."""

from __future__ import annotations

import json

import pytest

from spokesync.emails import email_problem, is_known_tld, is_valid_email
from tests.sandbox.conftest import Api


def _contact(api: Api, **props: str) -> str:
    status, body = api.post("/crm/v3/objects/contacts", {"properties": props})
    assert status == 201, body
    return str(body["id"])


def _patch(api: Api, rid: str, **props: str) -> dict:
    status, body = api.call("PATCH", f"/crm/v3/objects/contacts/{rid}", {"properties": props})
    assert status == 200, body
    return body


def _edit(api: Api, **body: object) -> dict:
    response = api.http.post("/__sandbox/edit", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_history_tells_a_person_from_the_integration(api: Api) -> None:
    rid = _contact(api, email="ada@acme.io", jobtitle="CTO")
    _edit(
        api,
        objectType="contacts",
        id=rid,
        properties={"jobtitle": "CEO"},
        timestamp="2030-01-02T03:04:05.000Z",
    )
    _patch(api, rid, phone="+1 555")
    status, body = api.get(
        f"/crm/v3/objects/contacts/{rid}?propertiesWithHistory=jobtitle,phone,city,lastmodifieddate"
    )
    assert status == 200
    hist = body["propertiesWithHistory"]
    assert [(v["value"], v["sourceType"]) for v in hist["jobtitle"]] == [
        ("CEO", "CRM_UI"),
        ("CTO", "INTEGRATION"),
    ]
    assert hist["jobtitle"][0] == {
        "value": "CEO",
        "timestamp": "2030-01-02T03:04:05.000Z",
        "sourceType": "CRM_UI",
        "sourceId": "userId:166322228",
        "updatedByUserId": 166322228,
    }
    assert hist["jobtitle"][1]["sourceId"] == "1000001"
    assert [v["value"] for v in hist["phone"]] == ["+1 555"]
    assert hist["city"] == []
    assert hist["lastmodifieddate"][0]["value"] == body["updatedAt"]
    # batch read and list carry it too; a write of the same value adds no version
    _patch(api, rid, phone="+1 555")
    status, batch = api.post(
        "/crm/v3/objects/contacts/batch/read",
        {"inputs": [{"id": rid}], "properties": ["phone"], "propertiesWithHistory": ["phone"]},
    )
    assert status == 200 and len(batch["results"][0]["propertiesWithHistory"]["phone"]) == 1
    _, listed = api.get("/crm/v3/objects/contacts?limit=100&propertiesWithHistory=jobtitle")
    assert [v["value"] for v in listed["results"][0]["propertiesWithHistory"]["jobtitle"]] == [
        "CEO",
        "CTO",
    ]


def test_person_edit_moves_lastmodifieddate_and_is_searchable(api: Api) -> None:
    first = _contact(api, email="one@acme.io")
    second = _contact(api, email="two@acme.io")
    edited = _edit(api, objectType="contacts", id=first, properties={"city": "Oslo"})
    stamp = edited["properties"]["lastmodifieddate"]
    status, found = api.post(
        "/crm/v3/objects/contacts/search",
        {
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": "lastmodifieddate", "operator": "GTE", "value": stamp}
                    ]
                }
            ],
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            "limit": 200,
        },
    )
    assert status == 200 and [r["id"] for r in found["results"]] == [first]
    assert second not in [r["id"] for r in found["results"]]


def test_lifecyclestage_only_moves_forward_unless_cleared(api: Api) -> None:
    rid = _contact(api, email="x@acme.io", lifecyclestage="opportunity")
    body = _patch(api, rid, lifecyclestage="lead")  # backward: 200, value kept
    assert body["properties"]["lifecyclestage"] == "opportunity"
    _patch(api, rid, lifecyclestage="customer")
    assert (
        api.get(f"/crm/v3/objects/contacts/{rid}?properties=lifecyclestage")[1]["properties"][
            "lifecyclestage"
        ]
        == "customer"
    )
    _patch(api, rid, lifecyclestage="")
    _patch(api, rid, lifecyclestage="lead")
    assert (
        api.get(f"/crm/v3/objects/contacts/{rid}?properties=lifecyclestage")[1]["properties"][
            "lifecyclestage"
        ]
        == "lead"
    )
    # batch upsert obeys it too; a person in the UI may move it back
    status, _ = api.post(
        "/crm/v3/objects/contacts/batch/upsert",
        {
            "inputs": [
                {
                    "id": "x@acme.io",
                    "idProperty": "email",
                    "properties": {"lifecyclestage": "subscriber"},
                }
            ]
        },
    )
    assert status == 200
    assert api.export("contacts")[0]["properties"]["lifecyclestage"] == "lead"
    _edit(api, objectType="contacts", id=rid, properties={"lifecyclestage": "subscriber"})
    assert api.export("contacts")[0]["properties"]["lifecyclestage"] == "subscriber"
    # companies have the same rule
    _, co = api.post("/crm/v3/objects/companies", {"properties": {"lifecyclestage": "customer"}})
    api.call(
        "PATCH", f"/crm/v3/objects/companies/{co['id']}", {"properties": {"lifecyclestage": "lead"}}
    )
    assert api.export("companies")[0]["properties"]["lifecyclestage"] == "customer"


def test_patch_contact_by_email(api: Api) -> None:
    rid = _contact(api, email="ada@acme.io")
    status, body = api.call(
        "PATCH",
        "/crm/v3/objects/contacts/ADA@acme.io?idProperty=email",
        {"properties": {"city": "Berlin"}},
    )
    assert (status, body["id"], body["properties"]["city"]) == (200, rid, "Berlin")
    status, _ = api.call(
        "PATCH",
        "/crm/v3/objects/contacts/nobody@acme.io?idProperty=email",
        {"properties": {"city": "Berlin"}},
    )
    assert status == 404
    # batch/update still refuses email as idProperty
    status, body = api.post(
        "/crm/v3/objects/contacts/batch/update",
        {"inputs": [{"id": "ada@acme.io", "idProperty": "email", "properties": {"city": "X"}}]},
    )
    assert status == 400 and "non-unique 0-1 property email" in body["message"]


@pytest.mark.parametrize(
    "email",
    [
        "bcooper@example.con",
        "invalid.email@wales.nhs.ik",
        "dsfsafas@",
        "None",
        "example.lcom ",
        "a@b@c.com",
        "x@y..com",
    ],
)
def test_invalid_emails_answer_invalid_email(api: Api, email: str) -> None:
    status, body = api.post("/crm/v3/objects/contacts", {"properties": {"email": email}})
    assert status == 400
    detail = json.loads(body["message"].split(": ", 1)[1])[0]
    assert detail["error"] == "INVALID_EMAIL"
    assert detail["message"] == f"Email address {email.strip()} is invalid"
    assert not is_valid_email(email)


def test_email_rule_is_shared_with_ingest() -> None:
    assert email_problem("  Ada.Lovelace@Acme.CO.UK ") is None
    assert email_problem("x@example.con") == "unknown top-level domain .con"
    assert is_known_tld("io") and is_known_tld("xn--p1ai") and not is_known_tld("con")
    assert not is_known_tld("test")


def test_enumeration_values_with_surrounding_spaces_are_accepted(api: Api) -> None:
    status, body = api.post(
        "/crm/v3/objects/contacts",
        {"properties": {"email": "e@acme.io", "hs_lead_status": " NEW "}},
    )
    assert status == 201 and body["properties"]["hs_lead_status"] == " NEW "
    status, body = api.post(
        "/crm/v3/objects/contacts",
        {"properties": {"email": "f@acme.io", "hs_lead_status": " new "}},
    )
    assert status == 400 and "INVALID_OPTION" in body["message"]


def test_gdpr_delete(api: Api) -> None:
    rid = _contact(api, email="gone@acme.io")
    _, co = api.post("/crm/v3/objects/companies", {"properties": {"domain": "acme.io"}})
    api.post(
        "/crm/v4/associations/contacts/companies/batch/associate/default",
        {"inputs": [{"from": {"id": rid}, "to": {"id": co["id"]}}]},
    )
    assert api.post("/crm/v3/objects/contacts/gdpr-delete", {"objectId": rid}) == (204, None)
    assert api.get(f"/crm/v3/objects/contacts/{rid}?archived=true")[0] == 404
    assert (
        api.http.get("/__sandbox/export?objectType=contacts&archived=true").json()["contacts"] == []
    )
    _, links = api.get(f"/crm/v4/objects/companies/{co['id']}/associations/contacts")
    assert links["results"] == []
    # the address of a deleted contact can be used again; an unknown one is blocklisted
    assert api.post("/crm/v3/objects/contacts", {"properties": {"email": "gone@acme.io"}})[0] == 201
    assert api.post(
        "/crm/v3/objects/contacts/gdpr-delete", {"objectId": "Typo@acme.io", "idProperty": "email"}
    ) == (204, None)
    status, body = api.post("/crm/v3/objects/contacts", {"properties": {"email": "typo@acme.io"}})
    assert status == 400 and "INVALID_EMAIL" in body["message"]
    status, body = api.post("/crm/v3/objects/contacts/gdpr-delete", {})
    assert status == 400 and "objectId" in body["message"]


def test_association_batch_create_with_an_id_that_does_not_exist(api: Api) -> None:
    rid = _contact(api, email="a@acme.io")
    status, body = api.post(
        "/crm/v4/associations/contacts/companies/batch/create",
        {
            "inputs": [
                {
                    "from": {"id": rid},
                    "to": {"id": "999999"},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}],
                }
            ]
        },
    )
    assert status == 207
    assert body["results"] == []
    assert body["errors"][0]["context"] == {"INVALID_OBJECT_IDS": ["999999"]}
    assert body["errors"][0]["subCategory"] == "crm.associations.INVALID_OBJECT_IDS"


def test_change_notifications_carry_only_changed_values_and_the_source(api: Api) -> None:
    seen: list[tuple[dict[str, str], bool, str]] = []
    api.app.objects.listeners.append(
        lambda ot, rec, values, created, source: seen.append((values, created, source.source_type))
    )
    rid = _contact(api, email="n@acme.io", city="Oslo")
    _patch(api, rid, city="Oslo", phone="1")  # city unchanged
    _patch(api, rid, lifecyclestage="customer")
    _patch(api, rid, lifecyclestage="lead")  # backward: dropped, nothing changed
    _edit(api, objectType="contacts", id=rid, properties={"city": "Bergen"})
    assert seen == [
        ({"email": "n@acme.io", "city": "Oslo"}, True, "INTEGRATION"),
        ({"phone": "1"}, False, "INTEGRATION"),
        ({"lifecyclestage": "customer"}, False, "INTEGRATION"),
        ({}, False, "INTEGRATION"),
        ({"city": "Bergen"}, False, "CRM_UI"),
    ]
