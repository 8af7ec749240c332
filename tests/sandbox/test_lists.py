"""Lists API v3 in the sandbox: the shapes of HubSpot's spec (create 200 {"list"}, find by name
without case, membership answers with ``recordsIdsAdded``/``recordIdsRemoved``/
``recordIdsMissing``, paging ≤ 250 with an opaque ``after``), DYNAMIC lists refused, scopes,
faults, and members that follow their records through deletes and merges."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from spokesync.sandbox.app import ConnectionDropped
from tests.sandbox.conftest import Api, make_api

LISTS = "/crm/v3/lists"


def _contacts(api: Api, n: int) -> list[str]:
    inputs = [{"properties": {"email": f"p{i}@acme.io"}} for i in range(n)]
    ids: list[str] = []
    for start in range(0, n, 100):
        status, body = api.post(
            "/crm/v3/objects/contacts/batch/create", {"inputs": inputs[start : start + 100]}
        )
        assert status == 201, body
        ids += [r["id"] for r in body["results"]]
    return sorted(ids, key=int)


def _create(api: Api, name: str, ptype: str = "MANUAL", type_id: str = "0-1") -> dict[str, Any]:
    status, body = api.post(LISTS, {"name": name, "objectTypeId": type_id, "processingType": ptype})
    assert status == 200, body
    return body["list"]


def _put(api: Api, path: str, body: Any) -> tuple[int, Any]:
    return api.call("PUT", path, body)


def _members(api: Api, list_id: str, limit: int = 250) -> list[str]:
    out: list[str] = []
    after = None
    while True:
        query = f"?limit={limit}" + (f"&after={after}" if after else "")
        status, body = api.get(f"{LISTS}/{list_id}/memberships{query}")
        assert status == 200, body
        out += [r["recordId"] for r in body["results"]]
        after = (body.get("paging") or {}).get("next", {}).get("after")
        if not after:
            return out


def test_create_answers_200_with_the_list_and_finds_it_by_name_without_case(api: Api) -> None:
    status, body = api.post(
        LISTS, {"name": "PQA admins", "objectTypeId": "0-1", "processingType": "MANUAL"}
    )
    assert status == 200
    lst = body["list"]
    assert set(lst) >= {"listId", "listVersion", "name", "objectTypeId", "processingStatus"}
    assert (lst["name"], lst["objectTypeId"], lst["processingType"], lst["size"]) == (
        "PQA admins",
        "0-1",
        "MANUAL",
        0,
    )
    assert isinstance(lst["listId"], str) and lst["listId"].isdigit()
    status, found = api.get(f"{LISTS}/object-type-id/0-1/name/pqa%20ADMINS")
    assert status == 200 and found["list"]["listId"] == lst["listId"]
    assert api.get(f"{LISTS}/{lst['listId']}")[1]["list"]["name"] == "PQA admins"
    # the same name (any case) is taken portal-wide; another object type does not find it
    assert (
        api.post(LISTS, {"name": "pqa admins", "objectTypeId": "0-2", "processingType": "MANUAL"})[
            0
        ]
        == 400
    )
    assert api.get(f"{LISTS}/object-type-id/0-2/name/PQA%20admins")[0] == 404
    assert api.get(f"{LISTS}/object-type-id/0-1/name/nobody")[0] == 404
    # the date-based path is the same API
    status, dated = api.get(f"/crm/lists/2026-03/{lst['listId']}")
    assert status == 200 and dated["list"]["listId"] == lst["listId"]


def test_create_requires_name_type_and_a_known_processing_type(api: Api) -> None:
    status, body = api.post(LISTS, {"name": "x", "objectTypeId": "0-1"})
    assert status == 400 and "processingType" in body["message"]
    assert body["category"] == "VALIDATION_ERROR"
    assert api.post(LISTS, {"name": "x", "objectTypeId": "0-1", "processingType": "LIVE"})[0] == 400
    assert (
        api.post(LISTS, {"name": "x", "objectTypeId": "9-9", "processingType": "MANUAL"})[0] == 400
    )


def test_add_remove_and_add_and_remove_answer_with_the_specs_names(api: Api) -> None:
    a, b, c = _contacts(api, 3)
    lst = _create(api, "seg")
    path = f"{LISTS}/{lst['listId']}/memberships"
    status, body = _put(api, f"{path}/add", [a, b, "999999999"])
    assert status == 200
    assert body == {
        "recordsIdsAdded": [a, b],
        "recordIdsRemoved": [],
        "recordIdsMissing": ["999999999"],
    }
    # re-adding is a no-op; removing a non-member is ignored
    assert _put(api, f"{path}/add", [a])[1]["recordsIdsAdded"] == []
    assert _put(api, f"{path}/remove", [c])[1] == {
        "recordsIdsAdded": [],
        "recordIdsRemoved": [],
        "recordIdsMissing": [],
    }
    status, body = _put(
        api, f"{path}/add-and-remove", {"recordIdsToAdd": [c], "recordIdsToRemove": [a]}
    )
    assert status == 200
    assert body == {"recordsIdsAdded": [c], "recordIdsRemoved": [a], "recordIdsMissing": []}
    assert _members(api, lst["listId"]) == [b, c]
    assert api.get(f"{LISTS}/{lst['listId']}")[1]["list"]["size"] == 2
    # add-and-remove needs both arrays; add needs an array of ids
    assert _put(api, f"{path}/add-and-remove", {"recordIdsToAdd": [a]})[0] == 400
    assert _put(api, f"{path}/add", {"ids": [a]})[0] == 400
    # a company id is not a member of a contact list
    status, company = api.post("/crm/v3/objects/companies", {"properties": {"name": "Acme"}})
    assert _put(api, f"{path}/add", [company["id"]])[1]["recordIdsMissing"] == [company["id"]]


def test_dynamic_lists_refuse_membership_writes(api: Api) -> None:
    (a,) = _contacts(api, 1)
    lst = _create(api, "active", "DYNAMIC")
    status, body = _put(api, f"{LISTS}/{lst['listId']}/memberships/add", [a])
    assert status == 400 and "MANUAL or SNAPSHOT" in body["message"]
    snap = _create(api, "snap", "SNAPSHOT")
    assert _put(api, f"{LISTS}/{snap['listId']}/memberships/add", [a])[0] == 200


def test_memberships_page_by_record_id_with_an_opaque_token(api: Api) -> None:
    ids = _contacts(api, 7)
    lst = _create(api, "paged")
    _put(api, f"{LISTS}/{lst['listId']}/memberships/add", list(reversed(ids)))
    status, first = api.get(f"{LISTS}/{lst['listId']}/memberships?limit=3")
    assert status == 200
    assert [r["recordId"] for r in first["results"]] == ids[:3]
    assert first["total"] == 7
    assert set(first["results"][0]) == {"recordId", "membershipTimestamp"}
    token = first["paging"]["next"]["after"]
    assert token not in ids and not token.isdigit()
    assert _members(api, lst["listId"], limit=3) == ids
    assert api.get(f"{LISTS}/{lst['listId']}/memberships?limit=251")[0] == 400
    assert api.get(f"{LISTS}/{lst['listId']}/memberships?after=12")[0] == 400
    assert "paging" not in api.get(f"{LISTS}/{lst['listId']}/memberships?limit=250")[1]


def test_deleted_and_merged_records_leave_or_move_in_lists(api: Api) -> None:
    a, b, c, d = _contacts(api, 4)
    lst = _create(api, "follow")
    _put(api, f"{LISTS}/{lst['listId']}/memberships/add", [a, b, c])
    assert api.call("DELETE", f"/crm/v3/objects/contacts/{a}")[0] == 204
    status, merged = api.post(
        "/crm/v3/objects/contacts/merge", {"primaryObjectId": b, "objectIdToMerge": d}
    )
    assert status == 200
    survivor = merged["id"]
    assert _members(api, lst["listId"]) == [c, survivor]
    # the merged-away and deleted ids are missing on writes
    body = _put(api, f"{LISTS}/{lst['listId']}/memberships/add", [a, b])[1]
    assert body["recordIdsMissing"] == [a, b]
    status, body = api.post(
        "/crm/v3/objects/contacts/gdpr-delete", {"objectId": c, "idProperty": "hs_object_id"}
    )
    assert status == 204
    assert _members(api, lst["listId"]) == [survivor]
    status, mine = api.get(f"{LISTS}/records/0-1/{survivor}/memberships")
    assert [r["listId"] for r in mine["results"]] == [lst["listId"]]


def test_lists_and_members_survive_a_restart_and_reset_empties_them(tmp_path: Path) -> None:
    api = make_api(tmp_path)
    a, b = _contacts(api, 2)
    lst = _create(api, "kept")
    _put(api, f"{LISTS}/{lst['listId']}/memberships/add", [a, b])
    api.app.store.close()
    again = make_api(tmp_path)
    assert _members(again, lst["listId"]) == [a, b]
    assert again.get(f"{LISTS}/object-type-id/0-1/name/KEPT")[0] == 200
    assert again.http.post("/__sandbox/reset").status_code == 200
    assert again.get(f"{LISTS}/{lst['listId']}")[0] == 404


def test_delete_and_restore_a_list(api: Api) -> None:
    lst = _create(api, "gone")
    assert api.call("DELETE", f"{LISTS}/{lst['listId']}")[0] == 204
    assert api.get(f"{LISTS}/{lst['listId']}")[0] == 404
    assert api.get(f"{LISTS}/object-type-id/0-1/name/gone")[0] == 404
    assert api.call("PUT", f"{LISTS}/{lst['listId']}/restore")[0] == 204
    assert api.get(f"{LISTS}/object-type-id/0-1/name/gone")[0] == 200


def test_membership_writes_need_both_list_scopes(tmp_path: Path) -> None:
    api = make_api(
        tmp_path,
        tokens={
            "writer": frozenset({"crm.lists.write", "crm.objects.contacts.write"}),
            "both": frozenset({"crm.lists.write", "crm.lists.read"}),
        },
    )
    writer = {"Authorization": "Bearer writer"}
    status, body = api.call(
        "POST",
        LISTS,
        {"name": "s", "objectTypeId": "0-1", "processingType": "MANUAL"},
        headers=writer,
    )
    assert status == 200  # creating accepts crm.lists.write alone
    list_id = body["list"]["listId"]
    status, body = api.call("PUT", f"{LISTS}/{list_id}/memberships/add", [], headers=writer)
    assert status == 403 and body["category"] == "MISSING_SCOPES"
    assert body["errors"][0]["context"]["requiredGranularScopes"] == ["crm.lists.read"]
    assert api.call("GET", f"{LISTS}/{list_id}/memberships", headers=writer)[0] == 403
    both = {"Authorization": "Bearer both"}
    assert api.call("PUT", f"{LISTS}/{list_id}/memberships/add", [], headers=both)[0] == 200


@pytest.mark.parametrize("fault", [503, 429, "drop", "empty"])
def test_faults_on_membership_writes_apply_nothing(api: Api, fault: object) -> None:
    (a,) = _contacts(api, 1)
    lst = _create(api, "faulty")
    api.http.put("/__sandbox/faults", json={"next": [fault], "route_pattern": "/memberships"})
    path = f"{LISTS}/{lst['listId']}/memberships/add"
    if fault == "drop":
        with pytest.raises(ConnectionDropped):
            _put(api, path, [a])
    else:
        status, body = _put(api, path, [a])
        assert status == (200 if fault == "empty" else fault)
        assert "recordsIdsAdded" not in body
    assert _members(api, lst["listId"]) == []


def test_drop_after_apply_on_a_membership_write_applies_it(api: Api) -> None:
    (a,) = _contacts(api, 1)
    lst = _create(api, "applied")
    api.http.put("/__sandbox/faults", json={"next": ["drop_after_apply"], "writes_only": True})
    with pytest.raises(ConnectionDropped):
        _put(api, f"{LISTS}/{lst['listId']}/memberships/add", [a])
    assert _members(api, lst["listId"]) == [a]


def test_a_fault_on_create_can_drop_after_the_list_is_made(api: Api) -> None:
    api.http.put("/__sandbox/faults", json={"next": ["drop_after_apply"], "writes_only": True})
    with pytest.raises(ConnectionDropped):
        api.post(LISTS, {"name": "lost answer", "objectTypeId": "0-1", "processingType": "MANUAL"})
    assert api.get(f"{LISTS}/object-type-id/0-1/name/lost%20answer")[0] == 200
