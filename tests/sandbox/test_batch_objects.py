"""Contract tests for the objects batch endpoints, with HubSpot's exact bodies."""

from __future__ import annotations

import json
import re

from tests.sandbox.conftest import Api, make_api

UPSERT = "/crm/v3/objects/contacts/batch/upsert"
ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def _upsert_input(email: str, **props: str) -> dict:
    return {"id": email, "idProperty": "email", "properties": props}


def test_upsert_by_email_creates_then_updates_with_new_flag_and_lowercased_email(api: Api) -> None:
    status, body = api.post(UPSERT, {"inputs": [_upsert_input("Luke@Diner.com", phone="555")]})
    assert status == 200
    assert body["status"] == "COMPLETE"
    [created] = body["results"]
    assert created["new"] is True
    assert created["properties"]["email"] == "luke@diner.com"
    assert created["properties"]["hs_object_id"] == created["id"]
    assert ISO_MS.match(created["createdAt"]) and created["archived"] is False
    assert ISO_MS.match(created["properties"]["lastmodifieddate"])

    status, body = api.post(UPSERT, {"inputs": [_upsert_input("LUKE@diner.com", phone="777")]})
    [updated] = body["results"]
    assert (status, updated["new"], updated["id"]) == (200, False, created["id"])
    [stored] = api.export("contacts")
    assert stored["properties"]["phone"] == "777"
    assert stored["properties"]["email"] == "luke@diner.com"


def test_upsert_results_are_shuffled_not_in_input_order(api: Api) -> None:
    inputs = [_upsert_input(f"p{i}@x.com", firstname=f"P{i}") for i in range(20)]
    status, body = api.post(UPSERT, {"inputs": inputs})
    assert status == 200
    returned = [r["properties"]["email"] for r in body["results"]]
    assert sorted(returned) == sorted(i["id"] for i in inputs)
    assert returned != [i["id"] for i in inputs]


def test_upsert_by_non_unique_property_is_rejected_with_exact_message(api: Api) -> None:
    status, body = api.post(
        "/crm/v3/objects/deals/batch/upsert",
        {"inputs": [{"id": "Big deal", "idProperty": "dealname", "properties": {}}]},
    )
    assert status == 400
    assert body["message"] == (
        "Unable to perform update/upsert by non-unique 0-3 property dealname in portal ID 12345678"
    )
    assert body["category"] == "VALIDATION_ERROR"
    assert api.last.headers["X-HubSpot-Correlation-Id"] == body["correlationId"]
    assert api.export("deals") == []


def test_upsert_by_custom_unique_property(api: Api) -> None:
    prop = {
        "name": "erp_id",
        "label": "ERP id",
        "type": "string",
        "fieldType": "text",
        "groupName": "companyinformation",
        "hasUniqueValue": True,
    }
    assert api.post("/crm/v3/properties/companies", prop)[0] == 201
    path = "/crm/v3/objects/companies/batch/upsert"
    inputs = [
        {
            "id": "E1",
            "idProperty": "erp_id",
            "properties": {"name": "Acme", "industry": "COMPUTER_SOFTWARE"},
        }
    ]
    status, body = api.post(path, {"inputs": inputs})
    assert (status, body["results"][0]["new"]) == (200, True)
    assert body["results"][0]["properties"]["erp_id"] == "E1"
    status, body = api.post(path, {"inputs": [{**inputs[0], "properties": {"name": "Acme Inc"}}]})
    assert (status, body["results"][0]["new"]) == (200, False)
    [company] = api.export("companies")
    assert company["properties"]["name"] == "Acme Inc"
    assert company["properties"]["industry"] == "COMPUTER_SOFTWARE"


def test_more_than_100_inputs_is_a_400_and_nothing_written(api: Api) -> None:
    inputs = [_upsert_input(f"c{i}@x.com") for i in range(101)]
    status, body = api.post(UPSERT, {"inputs": inputs})
    assert status == 400
    assert body["category"] == "VALIDATION_ERROR"
    assert api.export("contacts") == []


def test_duplicate_ids_in_batch_give_hubspots_exact_body(api: Api) -> None:
    inputs = [_upsert_input("a@x.com"), _upsert_input("b@x.com"), _upsert_input("A@X.com")]
    status, body = api.post(UPSERT, {"inputs": inputs})
    assert status == 400
    assert body == {
        "status": "error",
        "message": "Duplicate IDs found in batch input: [a@x.com]. IDs must be unique",
        "correlationId": api.last.headers["X-HubSpot-Correlation-Id"],
        "context": {"ids": ["a@x.com"]},
        "category": "VALIDATION_ERROR",
    }
    assert api.export("contacts") == []


def test_one_invalid_input_without_trace_ids_fails_whole_batch(api: Api) -> None:
    inputs = [
        {"properties": {"name": "Good", "domain": "good.com"}},
        {"properties": {"name": "Bad", "testproperty": "x"}},
    ]
    status, body = api.post("/crm/v3/objects/companies/batch/create", {"inputs": inputs})
    assert status == 400
    assert body["category"] == "VALIDATION_ERROR"
    assert body["message"] == (
        'Property values were not valid: [{"isValid":false,"message":"Property \\"testproperty\\" '
        'does not exist","error":"PROPERTY_DOESNT_EXIST","name":"testproperty",'
        '"localizedErrorMessage":"Property \\"testproperty\\" does not exist","portalId":12345678}]'
    )
    assert body["errors"] == [
        {
            "message": 'Property "testproperty" does not exist',
            "code": "PROPERTY_DOESNT_EXIST",
            "context": {"propertyName": ["testproperty"]},
        }
    ]
    assert api.export("companies") == []


def test_trace_ids_give_207_and_write_only_valid_inputs(api: Api) -> None:
    inputs = [
        {
            "objectWriteTraceId": "t-ok",
            "properties": {"hs_pipeline": "0", "hs_pipeline_stage": "1", "subject": "S"},
        },
        {
            "objectWriteTraceId": "t-bad",
            "properties": {
                "subject": "S2",
                "hs_pipeline": "0",
                "hs_pipeline_stage": "1",
                "missing": "1",
            },
        },
    ]
    status, body = api.post("/crm/v3/objects/tickets/batch/create", {"inputs": inputs})
    assert status == 207
    assert body["numErrors"] == 1
    [ok] = body["results"]
    assert ok["objectWriteTraceId"] == "t-ok"
    assert ok["properties"]["hs_pipeline_stage"] == "1"
    [error] = body["errors"]
    assert error["status"] == "error" and error["category"] == "VALIDATION_ERROR"
    assert error["context"] == {"objectWriteTraceId": ["t-bad"]}
    items = json.loads(error["message"].removeprefix("Property values were not valid: "))
    assert items == [
        {
            "isValid": False,
            "message": 'Property "missing" does not exist',
            "error": "PROPERTY_DOESNT_EXIST",
            "name": "missing",
            "localizedErrorMessage": 'Property "missing" does not exist',
            "portalId": 12345678,
        }
    ]
    assert [t["properties"]["subject"] for t in api.export("tickets")] == ["S"]


def test_upsert_by_custom_unique_with_trace_ids_is_partial(api: Api) -> None:
    prop = {
        "name": "ext_id",
        "label": "Ext",
        "type": "string",
        "fieldType": "text",
        "groupName": "companyinformation",
        "hasUniqueValue": True,
    }
    api.post("/crm/v3/properties/companies", prop)
    inputs = [
        {
            "id": "1",
            "idProperty": "ext_id",
            "objectWriteTraceId": "a",
            "properties": {"numberofemployees": "12"},
        },
        {
            "id": "2",
            "idProperty": "ext_id",
            "objectWriteTraceId": "b",
            "properties": {"numberofemployees": "1,200"},
        },
    ]
    status, body = api.post("/crm/v3/objects/companies/batch/upsert", {"inputs": inputs})
    assert status == 207
    assert [r["objectWriteTraceId"] for r in body["results"]] == ["a"]
    assert body["errors"][0]["context"]["objectWriteTraceId"] == ["b"]
    assert '"error":"INVALID_LONG"' in body["errors"][0]["message"]
    assert [c["properties"]["ext_id"] for c in api.export("companies")] == ["1"]


def test_email_upsert_is_all_or_nothing_even_with_trace_ids(api: Api) -> None:
    inputs = [
        {**_upsert_input("ok@x.com", firstname="Ok"), "objectWriteTraceId": "1"},
        {**_upsert_input("bad@x.com", lifecyclestage="Customer"), "objectWriteTraceId": "2"},
    ]
    status, body = api.post(UPSERT, {"inputs": inputs})
    assert status == 400
    assert '"error":"INVALID_OPTION"' in body["message"]
    assert api.export("contacts") == []


def test_email_upsert_partial_knob_allows_207(tmp_path) -> None:
    api = make_api(tmp_path, email_upsert_partial=True)
    inputs = [
        {**_upsert_input("ok@x.com"), "objectWriteTraceId": "1"},
        {**_upsert_input("bad@x.com", lifecyclestage="Customer"), "objectWriteTraceId": "2"},
    ]
    status, body = api.post(UPSERT, {"inputs": inputs})
    assert (status, body["numErrors"]) == (207, 1)
    assert [c["properties"]["email"] for c in api.export("contacts")] == ["ok@x.com"]


def test_batch_read_with_missing_ids_is_207_object_not_found(api: Api) -> None:
    _, body = api.post(UPSERT, {"inputs": [_upsert_input("r@x.com", firstname="R")]})
    rid = body["results"][0]["id"]
    status, body = api.post(
        "/crm/v3/objects/contacts/batch/read",
        {"properties": ["firstname"], "inputs": [{"id": rid}, {"id": "999"}]},
    )
    assert status == 207
    assert body["numErrors"] == 1
    assert body["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert body["errors"][0]["message"] == (
        "Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid."
    )
    assert body["errors"][0]["context"] == {"ids": ["999"]}
    [result] = body["results"]
    assert result["properties"]["firstname"] == "R" and result["id"] == rid


def test_batch_read_by_email_id_property(api: Api) -> None:
    api.post(UPSERT, {"inputs": [_upsert_input("e@x.com", firstname="E")]})
    status, body = api.post(
        "/crm/v3/objects/contacts/batch/read",
        {"idProperty": "email", "properties": ["firstname"], "inputs": [{"id": "E@x.com"}]},
    )
    assert status == 200
    assert body["results"][0]["properties"]["firstname"] == "E"


def test_batch_update_clears_with_empty_string_and_rejects_email_id_property(api: Api) -> None:
    _, body = api.post(
        UPSERT, {"inputs": [_upsert_input("u@x.com", firstname="U", jobtitle="CTO")]}
    )
    rid = body["results"][0]["id"]
    status, body = api.post(
        "/crm/v3/objects/contacts/batch/update",
        {"inputs": [{"id": rid, "properties": {"jobtitle": "", "firstname": "V"}}]},
    )
    assert status == 200
    assert body["results"][0]["properties"]["jobtitle"] == ""
    [stored] = api.export("contacts")
    assert "jobtitle" not in stored["properties"] and stored["properties"]["firstname"] == "V"
    status, body = api.post(
        "/crm/v3/objects/contacts/batch/update",
        {"inputs": [{"id": "u@x.com", "idProperty": "email", "properties": {"firstname": "W"}}]},
    )
    assert status == 400
    assert body["message"] == (
        "Unable to perform update/upsert by non-unique 0-1 property email in portal ID 12345678"
    )


def test_batch_update_missing_record_is_reported_not_written(api: Api) -> None:
    status, body = api.post(
        "/crm/v3/objects/contacts/batch/update",
        {"inputs": [{"id": "424242", "properties": {"firstname": "X"}}]},
    )
    assert status == 207
    assert body["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert body["errors"][0]["context"] == {"ids": ["424242"]}
    assert api.export("contacts") == []


def test_batch_create_contact_with_existing_email_is_409(api: Api) -> None:
    _, body = api.post(UPSERT, {"inputs": [_upsert_input("dup@x.com")]})
    rid = body["results"][0]["id"]
    status, body = api.post(
        "/crm/v3/objects/contacts/batch/create",
        {"inputs": [{"properties": {"email": "DUP@x.com"}}]},
    )
    assert status == 409
    assert body["message"] == f"Contact already exists. Existing ID: {rid}"
    assert body["category"] == "CONFLICT"
    assert len(api.export("contacts")) == 1


def test_batch_archive_hides_records_and_frees_email(api: Api) -> None:
    _, body = api.post(UPSERT, {"inputs": [_upsert_input("gone@x.com")]})
    rid = body["results"][0]["id"]
    status, _ = api.post("/crm/v3/objects/contacts/batch/archive", {"inputs": [{"id": rid}]})
    assert status == 204
    assert api.get(f"/crm/v3/objects/contacts/{rid}")[0] == 404
    status, body = api.get(f"/crm/v3/objects/contacts/{rid}?archived=true")
    assert (status, body["archived"]) == (200, True)
    _, body = api.post(UPSERT, {"inputs": [_upsert_input("gone@x.com")]})
    assert body["results"][0]["new"] is True and body["results"][0]["id"] != rid


def test_required_properties_on_deal_create_and_stage_checked_against_pipeline(api: Api) -> None:
    path = "/crm/v3/objects/deals/batch/create"
    status, body = api.post(path, {"inputs": [{"properties": {"dealname": "D"}}]})
    assert status == 400
    errors = {e["context"]["propertyName"][0]: e["code"] for e in body["errors"]}
    assert errors == {"dealstage": "REQUIRED_PROPERTY", "pipeline": "REQUIRED_PROPERTY"}
    status, body = api.post(
        path,
        {
            "inputs": [
                {"properties": {"dealname": "D", "pipeline": "default", "dealstage": "renewal_won"}}
            ]
        },
    )
    assert status == 400 and body["errors"][0]["code"] == "INVALID_OPTION"
    status, body = api.post(
        path,
        {
            "inputs": [
                {
                    "properties": {
                        "dealname": "D",
                        "pipeline": "renewals",
                        "dealstage": "renewal_won",
                        "amount": "10.50",
                    }
                }
            ]
        },
    )
    assert status == 201
    assert body["results"][0]["properties"]["amount"] == "10.5"
    assert (
        body["results"][0]["properties"]["hs_lastmodifieddate"] == body["results"][0]["updatedAt"]
    )


def test_upsert_input_without_id_is_rejected(api: Api) -> None:
    status, body = api.post(
        UPSERT, {"inputs": [{"idProperty": "email", "properties": {"firstname": "X"}}]}
    )
    assert (status, body["category"]) == (400, "VALIDATION_ERROR")
    assert api.export("contacts") == []
