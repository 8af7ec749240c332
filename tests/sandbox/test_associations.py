"""Associations v4: labeled and default batch create, read, archive, labels."""

from __future__ import annotations

from tests.sandbox.conftest import Api

V4 = "/crm/v4/associations/contacts/companies"


def _pair(api: Api) -> tuple[str, str]:
    _, contact = api.post("/crm/v3/objects/contacts", {"properties": {"email": "a@x.com"}})
    _, company = api.post("/crm/v3/objects/companies", {"properties": {"name": "Acme"}})
    return contact["id"], company["id"]


def test_batch_create_labeled_primary_and_read_both_directions(api: Api) -> None:
    contact, company = _pair(api)
    body = {
        "inputs": [
            {
                "from": {"id": contact},
                "to": {"id": company},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}],
            }
        ]
    }
    status, answer = api.post(f"{V4}/batch/create", body)
    assert status == 201
    assert answer["results"] == [
        {
            "fromObjectTypeId": "0-1",
            "fromObjectId": contact,
            "toObjectTypeId": "0-2",
            "toObjectId": company,
            "labels": ["Primary"],
        }
    ]
    status, answer = api.post(f"{V4}/batch/read", {"inputs": [{"id": contact}]})
    assert status == 200
    [result] = answer["results"]
    assert result["from"] == {"id": contact}
    assert result["to"] == [
        {
            "toObjectId": int(company),
            "associationTypes": [
                {"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None},
                {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"},
            ],
        }
    ]
    _, back = api.post(
        "/crm/v4/associations/companies/contacts/batch/read", {"inputs": [{"id": company}]}
    )
    assert {t["typeId"] for t in back["results"][0]["to"][0]["associationTypes"]} == {280, 2}


def test_associate_default_and_archive(api: Api) -> None:
    contact, company = _pair(api)
    status, answer = api.post(
        f"{V4}/batch/associate/default",
        {"inputs": [{"from": {"id": contact}, "to": {"id": company}}]},
    )
    assert status == 200
    assert answer["results"][0]["associationSpec"] == {
        "associationCategory": "HUBSPOT_DEFINED",
        "associationTypeId": 279,
    }
    status, listed = api.get(f"/crm/v4/objects/contacts/{contact}/associations/companies")
    assert (status, [r["toObjectId"] for r in listed["results"]]) == (200, [int(company)])
    status, _ = api.post(
        f"{V4}/batch/archive", {"inputs": [{"from": {"id": contact}, "to": [{"id": company}]}]}
    )
    assert status == 204
    status, answer = api.post(f"{V4}/batch/read", {"inputs": [{"id": contact}]})
    assert status == 207 and answer["results"] == []
    assert api.get(f"/crm/v4/objects/companies/{company}/associations/contacts")[1]["results"] == []


def test_labels_archive_removes_only_that_label(api: Api) -> None:
    contact, company = _pair(api)
    primary = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}]
    api.post(
        f"{V4}/batch/create",
        {"inputs": [{"from": {"id": contact}, "to": {"id": company}, "types": primary}]},
    )
    status, _ = api.post(
        f"{V4}/batch/labels/archive",
        {"inputs": [{"from": {"id": contact}, "to": {"id": company}, "types": primary}]},
    )
    assert status == 204
    _, answer = api.post(f"{V4}/batch/read", {"inputs": [{"id": contact}]})
    assert [t["typeId"] for t in answer["results"][0]["to"][0]["associationTypes"]] == [279]


def test_invalid_specs_and_ids(api: Api) -> None:
    contact, company = _pair(api)
    status, body = api.post(
        f"{V4}/batch/create",
        {
            "inputs": [
                {
                    "from": {"id": contact},
                    "to": {"id": company},
                    "types": [{"associationTypeId": 1}],
                }
            ]
        },
    )
    assert status == 400
    assert body["message"] == (
        "Invalid input JSON on line 1, column 3. Some required fields were not set: "
        "[associationCategory, associationTypeId]"
    )
    status, body = api.post(
        f"{V4}/batch/create",
        {
            "inputs": [
                {
                    "from": {"id": contact},
                    "to": {"id": "1"},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}],
                }
            ]
        },
    )
    assert status == 207 and body["errors"][0]["context"] == {"INVALID_OBJECT_IDS": ["1"]}


def test_labels_list_and_user_defined_label(api: Api) -> None:
    _, body = api.get(f"{V4}/labels")
    assert {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"} in body["results"]
    status, created = api.post(
        f"{V4}/labels", {"label": "Billing contact", "name": "billing_contact"}
    )
    assert status == 200
    type_id = created["results"][0]["typeId"]
    contact, company = _pair(api)
    spec = [{"associationCategory": "USER_DEFINED", "associationTypeId": type_id}]
    status, body = api.call(
        "PUT", f"/crm/v4/objects/contacts/{contact}/associations/companies/{company}", spec
    )
    assert (status, body["labels"]) == (201, ["Billing contact"])


def test_inline_associations_on_create(api: Api) -> None:
    _, company = api.post("/crm/v3/objects/companies", {"properties": {"name": "Acme"}})
    status, task = api.post(
        "/crm/v3/objects/tasks",
        {
            "properties": {"hs_timestamp": "1700000000000", "hs_task_subject": "Follow up"},
            "associations": [
                {
                    "to": {"id": company["id"]},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 192}],
                }
            ],
        },
    )
    assert status == 201
    _, listed = api.get(f"/crm/v4/objects/companies/{company['id']}/associations/tasks")
    assert listed["results"] == [
        {
            "toObjectId": int(task["id"]),
            "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 191, "label": None}],
        }
    ]


def test_date_versioned_association_paths(api: Api) -> None:
    contact, company = _pair(api)
    body = {"inputs": [{"from": {"id": contact}, "to": {"id": company}}]}
    assert (
        api.post("/crm/associations/2026-03/contact/company/batch/associate/default", body)[0]
        == 200
    )
    status, listed = api.get(f"/crm/objects/2026-03/contacts/{contact}/associations/0-2")
    assert (status, listed["results"][0]["toObjectId"]) == (200, int(company))


def test_single_pair_put_default_and_delete(api: Api) -> None:
    contact, company = _pair(api)
    status, body = api.call(
        "PUT", f"/crm/v4/objects/contact/{contact}/associations/default/company/{company}"
    )
    assert status == 200
    assert [
        (r["from"]["id"], r["associationSpec"]["associationTypeId"]) for r in body["results"]
    ] == [(contact, 279), (company, 280)]
    assert api.call(
        "DELETE", f"/crm/v4/objects/contacts/{contact}/associations/companies/{company}"
    ) == (204, None)
    assert api.get(f"/crm/v4/objects/contacts/{contact}/associations/companies")[1]["results"] == []
    assert (
        api.call("PUT", f"/crm/v4/objects/contacts/{contact}/associations/default/companies/1")[0]
        == 404
    )


def test_associations_to_archived_records_are_not_listed(api: Api) -> None:
    contact, company = _pair(api)
    api.post(
        f"{V4}/batch/associate/default",
        {"inputs": [{"from": {"id": contact}, "to": {"id": company}}]},
    )
    api.call("DELETE", f"/crm/v3/objects/companies/{company}")
    assert api.get(f"/crm/v4/objects/contacts/{contact}/associations/companies")[1]["results"] == []
    status, body = api.post(f"{V4}/batch/read", {"inputs": [{"id": contact}]})
    assert (status, body["results"]) == (207, [])
