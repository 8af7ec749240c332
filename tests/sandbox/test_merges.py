"""Merges: a new survivor id, hs_merged_object_ids, reads of old ids, associations moved."""

from __future__ import annotations

from typing import Any

from tests.sandbox.conftest import Api

PRIMARY_CONTACT_TO_COMPANY = 1


def _contact(api: Api, **props: str) -> str:
    status, body = api.post("/crm/v3/objects/contacts", {"properties": props})
    assert status == 201, body
    return str(body["id"])


def _company(api: Api, **props: str) -> str:
    status, body = api.post("/crm/v3/objects/companies", {"properties": props})
    assert status == 201, body
    return str(body["id"])


def _link(api: Api, contact: str, company: str, *types: int) -> None:
    specs = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": t} for t in types]
    status, _ = api.post(
        "/crm/v4/associations/contacts/companies/batch/create",
        {"inputs": [{"from": {"id": contact}, "to": {"id": company}, "types": specs}]},
    )
    assert status == 201


def _merge(api: Api, obj: str, primary: str, other: str) -> tuple[int, Any]:
    return api.post(
        f"/crm/v3/objects/{obj}/merge", {"primaryObjectId": primary, "objectIdToMerge": other}
    )


def test_contact_merge_makes_a_new_record_that_old_ids_answer_with(api: Api) -> None:
    a = _contact(api, email="ada@acme.io", firstname="Ada", lifecyclestage="lead")
    b = _contact(api, email="ada.l@acme.io", firstname="Adele", jobtitle="CTO")
    b_stage = api.call(
        "PATCH", f"/crm/v3/objects/contacts/{b}", {"properties": {"lifecyclestage": "customer"}}
    )
    assert b_stage[0] == 200
    status, body = _merge(api, "contacts", a, b)
    assert status == 200
    survivor = body["id"]
    assert survivor not in (a, b)
    assert body["properties"]["hs_merged_object_ids"] == ";".join(sorted([a, b]))
    for old in (a, b):
        status, read = api.get(
            f"/crm/v3/objects/contacts/{old}?properties=email,firstname,jobtitle,"
            "lifecyclestage,hs_additional_emails,hs_merged_object_ids"
        )
        assert status == 200
        assert read["id"] == survivor
        assert read["properties"]["email"] == "ada@acme.io"  # the primary's
        assert read["properties"]["firstname"] == "Ada"  # the primary wins where set
        assert read["properties"]["jobtitle"] == "CTO"  # the secondary fills gaps
        assert read["properties"]["lifecyclestage"] == "customer"  # furthest down the funnel
        assert read["properties"]["hs_additional_emails"] == "ada.l@acme.io"
    # batch read and batch update do not map old ids
    status, batch = api.post(
        "/crm/v3/objects/contacts/batch/read", {"inputs": [{"id": a}, {"id": survivor}]}
    )
    assert status == 207
    assert [r["id"] for r in batch["results"]] == [survivor]
    assert batch["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert batch["errors"][0]["context"] == {"ids": [a]}
    status, upd = api.post(
        "/crm/v3/objects/contacts/batch/update",
        {"inputs": [{"id": b, "properties": {"city": "Paris"}}]},
    )
    assert status == 207 and upd["errors"][0]["context"] == {"ids": [b]}
    # the single PATCH of an old id updates the survivor
    status, patched = api.call(
        "PATCH", f"/crm/v3/objects/contacts/{b}", {"properties": {"city": "Paris"}}
    )
    assert (status, patched["id"]) == (200, survivor)
    # list and search show the survivor only
    _, listed = api.get("/crm/v3/objects/contacts?limit=100")
    assert [r["id"] for r in listed["results"]] == [survivor]
    _, found = api.post(
        "/crm/v3/objects/contacts/search",
        {
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": "hs_merged_object_ids", "operator": "EQ", "value": b}
                    ]
                }
            ]
        },
    )
    assert [r["id"] for r in found["results"]] == [survivor]
    # the email of the merged-away contact stays free for a new contact (newer HubSpot KB)
    assert (
        api.post("/crm/v3/objects/contacts", {"properties": {"email": "ada.l@acme.io"}})[0] == 201
    )


def test_merge_history_and_chained_merges(api: Api) -> None:
    a = _contact(api, email="a@acme.io")
    b = _contact(api, email="b@acme.io")
    c = _contact(api, email="c@acme.io")
    _, first = _merge(api, "contacts", a, b)
    _, second = _merge(api, "contacts", c, first["id"])
    ids = sorted([a, b, c, first["id"]])
    assert second["properties"]["hs_merged_object_ids"] == ";".join(ids)
    for old in (a, b, c, first["id"]):
        assert api.get(f"/crm/v3/objects/contacts/{old}")[1]["id"] == second["id"]
    _, read = api.get(
        f"/crm/v3/objects/contacts/{second['id']}?propertiesWithHistory=email,hs_additional_emails"
    )
    emails = read["propertiesWithHistory"]["email"]
    assert emails[0]["value"] == "c@acme.io"
    assert {v["value"] for v in emails} == {"a@acme.io", "b@acme.io", "c@acme.io"}
    extra = read["propertiesWithHistory"]["hs_additional_emails"][0]
    assert (extra["value"], extra["sourceType"]) == ("a@acme.io;b@acme.io", "MERGE_CONTACTS")


def test_merge_moves_associations_and_drops_the_secondarys_extra_primary(api: Api) -> None:
    acme, other = _company(api, domain="acme.io"), _company(api, domain="other.io")
    a, b = _contact(api, email="a@acme.io"), _contact(api, email="b@acme.io")
    _link(api, a, acme, 279, PRIMARY_CONTACT_TO_COMPANY)
    _link(api, b, other, 279, PRIMARY_CONTACT_TO_COMPANY)
    _, merged = _merge(api, "contacts", a, b)
    survivor = merged["id"]
    _, links = api.get(f"/crm/v4/objects/contacts/{survivor}/associations/companies")
    types = {
        str(r["toObjectId"]): sorted(t["typeId"] for t in r["associationTypes"])
        for r in links["results"]
    }
    assert types == {acme: [1, 279], other: [279]}
    _, back = api.get(f"/crm/v4/objects/companies/{other}/associations/contacts")
    assert [
        (str(r["toObjectId"]), [t["typeId"] for t in r["associationTypes"]])
        for r in back["results"]
    ] == [(survivor, [280])]
    exported = {c["id"]: c for c in api.export("contacts")}
    assert set(exported) == {survivor}


def test_company_merge_keeps_primary_domain_and_adds_the_other(api: Api) -> None:
    a = _company(api, domain="acme.io", name="Acme")
    b = _company(api, domain="acme.co.uk", name="Acme UK", phone="+44 1")
    status, merged = _merge(api, "companies", a, b)
    assert status == 200
    _, read = api.get(
        f"/crm/v3/objects/companies/{merged['id']}?properties=domain,name,phone,hs_additional_domains"
    )
    assert read["properties"] == {
        "domain": "acme.io",
        "name": "Acme",
        "phone": "+44 1",
        "hs_additional_domains": "acme.co.uk",
        "createdate": read["properties"]["createdate"],
        "hs_lastmodifieddate": read["properties"]["hs_lastmodifieddate"],
        "hs_object_id": merged["id"],
    }


def test_merge_errors(api: Api) -> None:
    a = _contact(api, email="a@acme.io")
    status, body = _merge(api, "contacts", a, a)
    assert status == 400 and body["category"] == "VALIDATION_ERROR"
    assert _merge(api, "contacts", a, "999")[0] == 404
    status, body = api.post("/crm/v3/objects/contacts/merge", {"primaryObjectId": a})
    assert status == 400 and "objectIdToMerge" in body["message"]
