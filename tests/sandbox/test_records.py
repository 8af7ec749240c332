"""Single-record CRUD, list paging, read-only properties and the date-versioned aliases."""

from __future__ import annotations

from tests.sandbox.conftest import Api


def test_create_get_patch_delete_company(api: Api) -> None:
    status, created = api.post(
        "/crm/v3/objects/companies",
        {"properties": {"name": "Acme", "domain": "acme.io", "annualrevenue": "1000.00"}},
    )
    assert status == 201
    assert created["properties"]["annualrevenue"] == "1000"
    rid = created["id"]
    status, body = api.get(f"/crm/v3/objects/companies/{rid}?properties=name,annualrevenue,city")
    assert status == 200
    assert body["properties"]["name"] == "Acme" and body["properties"]["city"] is None
    assert set(body["properties"]) == {
        "name",
        "annualrevenue",
        "city",
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
    }
    status, body = api.call(
        "PATCH", f"/crm/v3/objects/companies/{rid}", {"properties": {"city": "Berlin"}}
    )
    assert status == 200 and body["properties"]["city"] == "Berlin"
    assert body["updatedAt"] >= created["updatedAt"]
    assert api.call("DELETE", f"/crm/v3/objects/companies/{rid}") == (204, None)
    status, body = api.get(f"/crm/v3/objects/companies/{rid}")
    assert status == 404
    assert body == {
        "status": "error",
        "message": "resource not found",
        "correlationId": api.last.headers["X-HubSpot-Correlation-Id"],
    }


def test_object_types_by_plural_singular_and_type_id(api: Api) -> None:
    _, created = api.post("/crm/v3/objects/0-2", {"properties": {"name": "ById"}})
    for name in ("companies", "company", "0-2", "COMPANIES"):
        status, body = api.get(f"/crm/v3/objects/{name}/{created['id']}?properties=name")
        assert (status, body["properties"]["name"]) == (200, "ById")
    status, body = api.get("/crm/v3/objects/widgets")
    assert (status, body["message"]) == (400, "Unable to infer object type from: widgets")


def test_date_versioned_paths_are_aliases(api: Api) -> None:
    status, created = api.post(
        "/crm/objects/2026-03/contacts", {"properties": {"email": "v@x.com"}}
    )
    assert status == 201
    status, body = api.get(f"/crm/objects/2026-09/contacts/{created['id']}")
    assert (status, body["properties"]["email"]) == (200, "v@x.com")
    assert api.get("/crm/properties/2026-03/contacts/email")[1]["name"] == "email"


def test_read_only_properties_reject_writes(api: Api) -> None:
    status, body = api.post(
        "/crm/v3/objects/contacts",
        {"properties": {"email": "r@x.com", "hs_object_id": "5", "lastmodifieddate": "2020-01-01"}},
    )
    assert status == 400
    assert {e["code"] for e in body["errors"]} == {"READ_ONLY_VALUE"}
    assert {e["context"]["propertyName"][0] for e in body["errors"]} == {
        "hs_object_id",
        "lastmodifieddate",
    }
    assert api.export("contacts") == []


def test_create_contact_with_existing_email_is_409(api: Api) -> None:
    _, first = api.post("/crm/v3/objects/contacts", {"properties": {"email": "same@x.com"}})
    status, body = api.post("/crm/v3/objects/contacts", {"properties": {"email": "Same@X.com"}})
    assert status == 409
    assert body == {
        "status": "error",
        "message": f"Contact already exists. Existing ID: {first['id']}",
        "correlationId": api.last.headers["X-HubSpot-Correlation-Id"],
        "category": "CONFLICT",
    }


def test_list_pages_with_after_until_the_last_page_has_no_paging(api: Api) -> None:
    inputs = [{"properties": {"name": f"C{i}"}} for i in range(7)]
    api.post("/crm/v3/objects/companies/batch/create", {"inputs": inputs})
    seen, after, pages = [], None, 0
    while True:
        path = "/crm/v3/objects/companies?limit=3&properties=name" + (
            f"&after={after}" if after else ""
        )
        status, body = api.get(path)
        assert status == 200
        pages += 1
        seen += [r["properties"]["name"] for r in body["results"]]
        if "paging" not in body:
            break
        after = body["paging"]["next"]["after"]
    assert pages == 3
    assert sorted(seen) == sorted(f"C{i}" for i in range(7))
    assert api.get("/crm/v3/objects/companies?limit=101")[0] == 400


def test_tasks_through_objects_api(api: Api) -> None:
    status, body = api.post("/crm/v3/objects/tasks", {"properties": {"hs_task_subject": "Call"}})
    assert status == 400 and body["errors"][0]["context"]["propertyName"] == ["hs_timestamp"]
    status, body = api.post(
        "/crm/v3/objects/tasks",
        {
            "properties": {
                "hs_timestamp": "2026-10-30T15:00:00Z",
                "hs_task_subject": "Call",
                "hs_task_status": "NOT_STARTED",
                "hs_task_priority": "HIGH",
                "hs_task_type": "CALL",
            }
        },
    )
    assert status == 201
    assert body["properties"]["hs_timestamp"] == "2026-10-30T15:00:00.000Z"
    assert "hs_createdate" in body["properties"]


def test_invalid_json_is_a_validation_error(api: Api) -> None:
    response = api.http.post(
        "/crm/v3/objects/contacts",
        content=b"{not json",
        headers={"Authorization": "Bearer pat-sandbox-dev-token"},
    )
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
