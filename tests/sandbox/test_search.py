"""Search: filter logic, operators, sort, paging, limits and the 10,000 cap."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sandbox.conftest import Api, make_api

SEARCH = "/crm/v3/objects/companies/search"


@pytest.fixture
def api(tmp_path: Path) -> Api:
    """These tests search faster than HubSpot's 5/s; that limit has its own tests."""
    return make_api(tmp_path, search_rate_limit=1000)


def _seed(api: Api) -> None:
    rows = [
        ("Acme", "100", "COMPUTER_SOFTWARE"),
        ("Beta", "5", "RETAIL"),
        ("Gamma", "50", "COMPUTER_SOFTWARE"),
        ("Delta", "", "BANKING"),
        ("acme labs", "500", "RETAIL"),
    ]
    inputs = [
        {"properties": {"name": n, "numberofemployees": e, "industry": i}} for n, e, i in rows
    ]
    assert api.post("/crm/v3/objects/companies/batch/create", {"inputs": inputs})[0] == 201


def _names(body: dict) -> list[str]:
    return [r["properties"]["name"] for r in body["results"]]


def test_filters_and_within_group_or_across_groups(api: Api) -> None:
    _seed(api)
    body = {
        "filterGroups": [
            {
                "filters": [
                    {"propertyName": "industry", "operator": "EQ", "value": "COMPUTER_SOFTWARE"},
                    {"propertyName": "numberofemployees", "operator": "GT", "value": "60"},
                ]
            },
            {"filters": [{"propertyName": "name", "operator": "EQ", "value": "BETA"}]},
        ],
        "sorts": [{"propertyName": "name", "direction": "ASCENDING"}],
        "properties": ["name"],
    }
    status, answer = api.post(SEARCH, body)
    assert status == 200
    assert (answer["total"], _names(answer)) == (2, ["Acme", "Beta"])
    assert set(answer["results"][0]["properties"]) == {
        "name",
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
    }


def test_operators(api: Api) -> None:
    _seed(api)

    def names(f: dict) -> list[str]:
        body = {
            "filterGroups": [{"filters": [f]}],
            "properties": ["name"],
            "sorts": [{"propertyName": "name", "direction": "ASCENDING"}],
        }
        return _names(api.post(SEARCH, body)[1])

    assert names(
        {
            "propertyName": "numberofemployees",
            "operator": "BETWEEN",
            "value": "5",
            "highValue": "100",
        }
    ) == ["Acme", "Beta", "Gamma"]
    assert names({"propertyName": "numberofemployees", "operator": "NOT_HAS_PROPERTY"}) == ["Delta"]
    assert names(
        {"propertyName": "industry", "operator": "IN", "values": ["BANKING", "RETAIL"]}
    ) == ["acme labs", "Beta", "Delta"]  # strings sort case-insensitively
    assert (
        names({"propertyName": "industry", "operator": "EQ", "value": "retail"}) == []
    )  # enums are case-sensitive
    assert names({"propertyName": "name", "operator": "CONTAINS_TOKEN", "value": "acm*"}) == [
        "Acme",
        "acme labs",
    ]
    assert names({"propertyName": "numberofemployees", "operator": "LTE", "value": "50"}) == [
        "Beta",
        "Gamma",
    ]


def test_paging_limit_and_sort_descending(api: Api) -> None:
    _seed(api)
    body = {
        "limit": 2,
        "sorts": [{"propertyName": "numberofemployees", "direction": "DESCENDING"}],
        "properties": ["name"],
    }
    status, page1 = api.post(SEARCH, body)
    assert (status, page1["total"], _names(page1), page1["paging"]["next"]["after"]) == (
        200,
        5,
        ["acme labs", "Acme"],
        "2",
    )
    _, page3 = api.post(SEARCH, {**body, "after": "4"})
    assert _names(page3) == ["Delta"] and "paging" not in page3


def test_default_limit_is_10_and_archived_are_excluded(api: Api) -> None:
    inputs = [{"properties": {"name": f"N{i}"}} for i in range(12)]
    _, created = api.post("/crm/v3/objects/companies/batch/create", {"inputs": inputs})
    api.post(
        "/crm/v3/objects/companies/batch/archive", {"inputs": [{"id": created["results"][0]["id"]}]}
    )
    _, body = api.post(SEARCH, {})
    assert (body["total"], len(body["results"])) == (11, 10)


def test_limits_are_validation_errors(api: Api) -> None:
    f = {"propertyName": "name", "operator": "HAS_PROPERTY"}
    too_many_groups = {"filterGroups": [{"filters": [f]}] * 6}
    too_many_in_group = {"filterGroups": [{"filters": [f] * 7}]}
    too_many_total = {"filterGroups": [{"filters": [f] * 6}] * 3 + [{"filters": [f]}]}
    two_sorts = {"sorts": [{"propertyName": "name"}, {"propertyName": "domain"}]}
    for body in (
        too_many_groups,
        too_many_in_group,
        too_many_total,
        two_sorts,
        {"limit": 201},
        {"after": "9990", "limit": 20},
        {"query": "x" * 3001},
    ):
        status, answer = api.post(SEARCH, body)
        assert (status, answer["category"]) == (400, "VALIDATION_ERROR"), body
    assert api.post(SEARCH, {"after": "9800", "limit": 200})[0] == 200


def test_search_by_association(api: Api) -> None:
    _, company = api.post("/crm/v3/objects/companies", {"properties": {"name": "Parent"}})
    _, contact = api.post("/crm/v3/objects/contacts", {"properties": {"email": "kid@x.com"}})
    api.post(
        "/crm/v4/associations/contacts/companies/batch/associate/default",
        {"inputs": [{"from": {"id": contact["id"]}, "to": {"id": company["id"]}}]},
    )
    body = {
        "filterGroups": [
            {
                "filters": [
                    {
                        "propertyName": "associations.company",
                        "operator": "EQ",
                        "value": company["id"],
                    }
                ]
            }
        ]
    }
    _, answer = api.post("/crm/v3/objects/contacts/search", body)
    assert [r["id"] for r in answer["results"]] == [contact["id"]]


def test_search_lag_shows_previous_state_until_indexed(tmp_path: Path) -> None:
    import time

    api = make_api(tmp_path, search_rate_limit=1000, search_lag_ms=300)
    by_name = {
        "filterGroups": [
            {"filters": [{"propertyName": "name", "operator": "EQ", "value": "Lagged"}]}
        ],
        "properties": ["city"],
    }
    _, created = api.post(
        "/crm/v3/objects/companies", {"properties": {"name": "Lagged", "city": "Oslo"}}
    )
    assert api.post(SEARCH, by_name)[1]["total"] == 0  # not indexed yet
    assert api.get(f"/crm/v3/objects/companies/{created['id']}")[0] == 200  # reads are immediate
    time.sleep(0.35)
    assert api.post(SEARCH, by_name)[1]["results"][0]["properties"]["city"] == "Oslo"
    api.call(
        "PATCH", f"/crm/v3/objects/companies/{created['id']}", {"properties": {"city": "Bergen"}}
    )
    assert api.post(SEARCH, by_name)[1]["results"][0]["properties"]["city"] == "Oslo"
    time.sleep(0.35)
    assert api.post(SEARCH, by_name)[1]["results"][0]["properties"]["city"] == "Bergen"
