"""Fault injection (not applied unless asked), the request log, stats, export and reset."""

from __future__ import annotations

from pathlib import Path

import pytest

from spokesync.sandbox.app import ConnectionDropped
from tests.sandbox.conftest import Api, make_api

UPSERT = "/crm/v3/objects/contacts/batch/upsert"


def _body(email: str) -> dict:
    return {"inputs": [{"id": email, "idProperty": "email", "properties": {"firstname": "F"}}]}


def _faults(api: Api, **faults: object) -> dict:
    response = api.http.put("/__sandbox/faults", json=faults)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("status", [423, 502, 503, 504, 524])
def test_scripted_status_fault_is_not_applied(api: Api, status: int) -> None:
    _faults(api, next=[status])
    got, body = api.post(UPSERT, _body("f@x.com"))
    assert got == status and body["correlationId"] == api.last.headers["X-HubSpot-Correlation-Id"]
    assert api.export("contacts") == []
    assert api.post(UPSERT, _body("f@x.com"))[0] == 200
    assert len(api.export("contacts")) == 1


def test_dropped_connection_is_not_applied_but_drop_after_apply_is(api: Api) -> None:
    _faults(api, next=["drop", "drop_after_apply"])
    with pytest.raises(ConnectionDropped):
        api.post(UPSERT, _body("d1@x.com"))
    assert api.export("contacts") == []
    with pytest.raises(ConnectionDropped):
        api.post(UPSERT, _body("d2@x.com"))
    assert [c["properties"]["email"] for c in api.export("contacts")] == ["d2@x.com"]
    log = api.http.get("/__sandbox/requests").json()["results"]
    assert [(e["status"], e["fault"]) for e in log] == [(0, "drop"), (0, "drop_after_apply")]


def test_empty_2xx_has_neither_results_nor_errors_and_writes_nothing(api: Api) -> None:
    _faults(api, next=["empty"])
    status, body = api.post(UPSERT, _body("e@x.com"))
    assert status == 200 and set(body) == {"status", "startedAt", "completedAt"}
    assert api.export("contacts") == []


def test_seeded_probabilities_are_deterministic_and_scoped(tmp_path: Path) -> None:
    def run(sub: str) -> list[int]:
        api = make_api(tmp_path / sub)
        _faults(api, seed=42, status_probability={503: 0.3, 502: 0.2}, writes_only=True)
        assert api.get("/crm/v3/objects/contacts")[0] == 200  # reads are not eligible
        return [api.post(UPSERT, _body(f"s{i}@x.com"))[0] for i in range(30)]

    first, second = run("a"), run("b")
    assert first == second
    assert {503, 502, 200} == set(first)
    api = make_api(tmp_path / "c")
    _faults(api, status_probability={503: 1.0}, route_pattern="/companies")
    assert api.post(UPSERT, _body("r@x.com"))[0] == 200
    assert api.post("/crm/v3/objects/companies", {"properties": {"name": "X"}})[0] == 503


def test_invalid_fault_config_is_rejected(api: Api) -> None:
    response = api.http.put("/__sandbox/faults", json={"status_probability": {418: 0.5}})
    assert response.status_code == 400
    assert api.http.put("/__sandbox/faults", json={"bogus": 1}).status_code == 400


def test_request_log_records_request_and_response_and_masks_the_token(api: Api) -> None:
    api.post(UPSERT, _body("log@x.com"), headers={"X-Request-Id": "run-7:batch-1"})
    api.get("/crm/v3/objects/contacts?limit=5")
    [entry] = api.http.get("/__sandbox/requests", params={"request_id": "run-7:batch-1"}).json()[
        "results"
    ]
    assert entry["method"] == "POST" and entry["path"] == UPSERT
    assert entry["route"] == "/crm/v3/objects/{object_type}/batch/upsert"
    assert entry["body"] == _body("log@x.com")
    assert (
        entry["status"] == 200
        and entry["response_body"]["results"][0]["properties"]["email"] == "log@x.com"
    )
    assert entry["headers"]["authorization"] == "Bearer ***"
    assert entry["headers"]["x-request-id"] == "run-7:batch-1"
    assert api.last.headers["X-Request-Id"] != "run-7:batch-1"  # last call was the GET without one
    [get] = api.http.get("/__sandbox/requests", params={"method": "GET"}).json()["results"]
    assert get["query"] == {"limit": "5"}
    assert api.http.delete("/__sandbox/requests").status_code == 200
    assert api.http.get("/__sandbox/requests").json()["results"] == []


def test_stats_count_routes_statuses_and_records(api: Api) -> None:
    api.post(
        UPSERT,
        {
            "inputs": [
                {"id": f"{i}@x.com", "idProperty": "email", "properties": {}} for i in range(3)
            ]
        },
    )
    api.post(UPSERT, _body("0@x.com"))
    api.get("/crm/v3/objects/contacts/123")
    stats = api.http.get("/__sandbox/stats").json()
    assert stats["requests"] == {
        "POST /crm/v3/objects/{object_type}/batch/upsert": {"200": 2},
        "GET /crm/v3/objects/{object_type}/{object_id}": {"404": 1},
    }
    assert stats["requests_total"] == 3
    assert {k: stats["records"][k] for k in ("created", "updated", "written")} == {
        "created": 3,
        "updated": 1,
        "written": 4,
    }


def test_reset_empties_the_portal(api: Api) -> None:
    api.post(UPSERT, _body("x@x.com"))
    api.post(
        "/crm/v3/properties/contacts",
        {
            "name": "ext",
            "label": "E",
            "type": "string",
            "fieldType": "text",
            "groupName": "contactinformation",
        },
    )
    assert api.http.post("/__sandbox/reset").status_code == 200
    assert api.export("contacts") == []
    assert api.get("/crm/v3/properties/contacts/ext")[0] == 404
    assert api.http.get("/__sandbox/stats").json()["requests_total"] == 1


def test_status_route(api: Api) -> None:
    body = api.http.get("/").json()
    assert body["status"] == "ok" and body["portalId"] == 12345678


def test_injected_429_uses_the_ten_secondly_body_and_patch_merges(api: Api) -> None:
    _faults(api, next=[429, 503], writes_only=True)
    merged = api.http.patch("/__sandbox/faults", json={"latency_spike_ms": 5}).json()
    assert (merged["next"], merged["writes_only"], merged["latency_spike_ms"]) == (
        [429, 503],
        True,
        5,
    )
    status, body = api.post(UPSERT, _body("q@x.com"))
    assert (status, body["policyName"], body["errorType"]) == (
        429,
        "TEN_SECONDLY_ROLLING",
        "RATE_LIMIT",
    )
    assert api.http.get("/__sandbox/faults").json()["next"] == [503]
    assert api.http.delete("/__sandbox/faults").json()["next"] == []
    assert api.post(UPSERT, _body("q@x.com"))[0] == 200


def test_runtime_config_changes_the_rate_limit(api: Api) -> None:
    answer = api.http.patch(
        "/__sandbox/config", json={"rate_limit": 1, "shuffle_results": False}
    ).json()
    assert (answer["rate_limit"], answer["shuffle_results"]) == (1, False)
    assert [api.get("/crm/v3/objects/contacts")[0] for _ in range(2)] == [200, 429]
    assert api.http.patch("/__sandbox/config", json={"nope": 1}).status_code == 400


def test_latency_spike_delays_then_serves(api: Api) -> None:
    import time

    _faults(api, next=["latency"], latency_spike_ms=300)
    t0 = time.perf_counter()
    assert api.post(UPSERT, _body("slow@x.com"))[0] == 200
    assert time.perf_counter() - t0 >= 0.3
    assert len(api.export("contacts")) == 1


def test_export_includes_associations_and_archived_on_request(api: Api) -> None:
    _, contact = api.post("/crm/v3/objects/contacts", {"properties": {"email": "ex@x.com"}})
    _, company = api.post("/crm/v3/objects/companies", {"properties": {"name": "Ex"}})
    api.post(
        "/crm/v4/associations/contacts/companies/batch/associate/default",
        {"inputs": [{"from": {"id": contact["id"]}, "to": {"id": company["id"]}}]},
    )
    [exported] = api.export("contacts")
    assert exported["associations"] == {"companies": [{"id": company["id"], "types": [279]}]}
    api.call("DELETE", f"/crm/v3/objects/companies/{company['id']}")
    assert api.export("companies") == []
    archived = api.http.get(
        "/__sandbox/export", params={"objectType": "companies", "archived": "true"}
    ).json()
    assert [c["archived"] for c in archived["companies"]] == [True]
