"""The sandbox's speed-ups answer exactly what the plain paths did: compact property history
(and files with the old one-row-per-value table), the search hit cache across writes, and
association links inserted at commit."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from spokesync.sandbox.history import WriteSource
from spokesync.sandbox.store import Store
from tests.sandbox.conftest import Api, make_api

COMPANIES = "/crm/v3/objects/companies"


def _create(api: Api, names: list[str]) -> list[str]:
    status, body = api.post(
        f"{COMPANIES}/batch/create", {"inputs": [{"properties": {"name": n}} for n in names]}
    )
    assert status == 201
    by_name = {r["properties"]["name"]: r["id"] for r in body["results"]}
    return [by_name[n] for n in names]


def test_history_of_several_writes_reads_version_by_version(api: Api) -> None:
    (rid,) = _create(api, ["Acme"])
    api.call("PATCH", f"{COMPANIES}/{rid}", {"properties": {"name": "Acme 2", "city": "Lyon"}})
    api.call("PATCH", f"{COMPANIES}/{rid}", {"properties": {"city": ""}})
    status, body = api.get(f"{COMPANIES}/{rid}?propertiesWithHistory=name,city,domain")
    assert status == 200
    history = body["propertiesWithHistory"]
    assert [v["value"] for v in history["name"]] == ["Acme 2", "Acme"]
    assert [v["value"] for v in history["city"]] == ["", "Lyon"]
    assert history["domain"] == []
    assert {v["sourceType"] for v in history["name"]} == {"INTEGRATION"}


def test_a_file_with_the_old_history_table_is_converted(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite"
    con = sqlite3.connect(db)
    con.executescript(
        "CREATE TABLE property_history (type_id TEXT NOT NULL, id INTEGER NOT NULL, "
        "property TEXT NOT NULL, value TEXT NOT NULL, timestamp TEXT NOT NULL, "
        "source_type TEXT NOT NULL, source_id TEXT, user_id INTEGER);"
    )
    rows = [
        ("0-2", 7, "name", "A", "2026-01-01T00:00:00.000Z", "INTEGRATION", "1000001", None),
        ("0-2", 7, "city", "Lyon", "2026-01-01T00:00:00.000Z", "INTEGRATION", "1000001", None),
        ("0-2", 7, "name", "B", "2026-02-01T00:00:00.000Z", "CRM_UI", "userId:5", 5),
        ("0-2", 8, "name", "C", "2026-01-01T00:00:00.000Z", "INTEGRATION", "1000001", None),
    ]
    con.executemany("INSERT INTO property_history VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.commit()
    con.close()
    store = Store(db, 1)
    try:
        got = store.history.read("0-2", [7, 8], ["name", "city"])
        assert got[7]["name"] == [
            {
                "value": "B",
                "timestamp": "2026-02-01T00:00:00.000Z",
                "sourceType": "CRM_UI",
                "sourceId": "userId:5",
                "updatedByUserId": 5,
            },
            {
                "value": "A",
                "timestamp": "2026-01-01T00:00:00.000Z",
                "sourceType": "INTEGRATION",
                "sourceId": "1000001",
            },
        ]
        assert [v["value"] for v in got[7]["city"]] == ["Lyon"]
        assert [v["value"] for v in got[8]["name"]] == ["C"]
        assert store.history.latest_sources("0-2", 7) == {"name": "CRM_UI", "city": "INTEGRATION"}
        assert store.history.count() == 4
        tables = {r[0] for r in store._db.execute("SELECT name FROM sqlite_master")}
        assert "property_history" not in tables
    finally:
        store.close()


def test_one_append_with_a_property_twice_keeps_both_versions(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite", 1)
    try:
        src = WriteSource()
        stamp = "2026-01-01T00:00:00.000Z"
        store.history.append("0-2", [(1, "name", "A", stamp, src), (1, "name", "B", stamp, src)])
        assert [v["value"] for v in store.history.read("0-2", [1], ["name"])[1]["name"]] == [
            "B",
            "A",
        ]
    finally:
        store.close()


def test_search_pages_see_a_write_made_between_them(api: Api) -> None:
    ids = _create(api, [f"S{i}" for i in range(5)])
    query = {
        "filterGroups": [{"filters": [{"propertyName": "name", "operator": "HAS_PROPERTY"}]}],
        "sorts": [{"propertyName": "name", "direction": "ASCENDING"}],
        "properties": ["name"],
        "limit": 2,
    }
    status, first = api.post(f"{COMPANIES}/search", query)
    assert status == 200 and first["total"] == 5
    assert [r["properties"]["name"] for r in first["results"]] == ["S0", "S1"]
    # S4 now sorts first and one more company matches: the next page must show both
    api.call("PATCH", f"{COMPANIES}/{ids[4]}", {"properties": {"name": "A4"}})
    _create(api, ["S9"])
    status, second = api.post(f"{COMPANIES}/search", {**query, "after": "2"})
    assert second["total"] == 6
    assert [r["properties"]["name"] for r in second["results"]] == ["S1", "S2"]
    status, again = api.post(f"{COMPANIES}/search", {**query, "after": "2"})
    assert again["results"] == second["results"]


def test_association_links_survive_a_restart(tmp_path: Path) -> None:
    api = make_api(tmp_path)
    (company,) = _create(api, ["Linked"])
    status, body = api.post(
        "/crm/v3/objects/contacts/batch/create",
        {"inputs": [{"properties": {"email": f"p{i}@acme.com"}} for i in range(3)]},
    )
    contacts = sorted(r["id"] for r in body["results"])
    status, _ = api.post(
        "/crm/v4/associations/contacts/companies/batch/associate/default",
        {"inputs": [{"from": {"id": c}, "to": {"id": company}} for c in contacts]},
    )
    assert status in (200, 201)
    api.app.store.close()
    again = make_api(tmp_path)
    status, read = again.post(
        "/crm/v4/associations/companies/contacts/batch/read", {"inputs": [{"id": company}]}
    )
    assert status == 200
    assert sorted(t["toObjectId"] for t in read["results"][0]["to"]) == [int(c) for c in contacts]


def _ids(body: dict) -> list[str]:
    return [r["id"] for r in body["results"]]


def test_ranged_questions_answer_from_the_sorted_index_as_the_full_scan_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A range on the modified date (an incremental read and its restarts, a count over one
    stretch) is answered from the sorted index: the same ids, order and total as the full
    scan (forced here by a second filter group that matches nothing), and a restart with a
    new bound neither scans nor sorts the object again."""
    api = make_api(tmp_path, search_rate_limit=1000)
    ids = _create(api, [f"R{i}" for i in range(100)]) + _create(
        api, [f"R{i}" for i in range(100, 150)]
    )
    edits = {ids[7]: 1_900_000_000_000, ids[3]: 1_900_000_000_000, ids[90]: 1_900_000_050_000}
    for rid, ms in edits.items():  # a person, at fixed times: two share one millisecond
        assert (
            api.post(
                "/__sandbox/edit",
                {
                    "objectType": "companies",
                    "id": rid,
                    "properties": {"numberofemployees": "9"},
                    "timestamp": ms,
                },
            )[0]
            == 200
        )
    prop = "hs_lastmodifieddate"
    questions = [
        [{"propertyName": prop, "operator": "GTE", "value": "1900000000000"}],
        [{"propertyName": prop, "operator": "GT", "value": "1900000000000"}],
        [{"propertyName": prop, "operator": "EQ", "value": "1900000000000"}],
        [{"propertyName": prop, "operator": "LT", "value": "1900000000000"}],
        [
            {"propertyName": prop, "operator": "GTE", "value": "1700000000000"},
            {"propertyName": prop, "operator": "LTE", "value": "1900000000000"},
            {"propertyName": "numberofemployees", "operator": "HAS_PROPERTY"},
        ],
        [{"propertyName": prop, "operator": "BETWEEN", "value": "0", "highValue": "1900000000001"}],
        [
            {"propertyName": prop, "operator": "EQ", "value": "1900000000000"},
            {"propertyName": "hs_object_id", "operator": "GT", "value": ids[3]},
        ],
    ]
    never = {"filters": [{"propertyName": "name", "operator": "EQ", "value": "no such company"}]}
    for filters in questions:
        for sort, direction in (
            (prop, "ASCENDING"),
            (prop, "DESCENDING"),
            ("hs_object_id", "ASCENDING"),
        ):
            body = {
                "filterGroups": [{"filters": filters}],
                "sorts": [{"propertyName": sort, "direction": direction}],
                "limit": 200,
            }
            status, ranged = api.post(f"{COMPANIES}/search", body)
            assert status == 200
            status, scanned = api.post(
                f"{COMPANIES}/search", {**body, "filterGroups": [{"filters": filters}, never]}
            )
            assert (ranged["total"], _ids(ranged)) == (scanned["total"], _ids(scanned)), filters
    status, crowded = api.post(
        f"{COMPANIES}/search",
        {"filterGroups": [{"filters": questions[2]}], "sorts": [{"propertyName": prop}]},
    )
    assert sorted(_ids(crowded)) == sorted([ids[3], ids[7]]) and crowded["total"] == 2
    assert _ids(crowded) == sorted(_ids(crowded), key=int)  # one millisecond: id order
    # Restarts with new bounds reuse the index built once: no full scan, no new sort.
    searcher = api.app.searcher
    built = dict(searcher._index)

    def no_scan(*_: object) -> None:
        raise AssertionError("the ranged question scanned the whole object")

    monkeypatch.setattr(searcher, "_hits_of", no_scan)
    for low in ("1700000000000", "1900000000000", "1900000000001", "1900000050000"):
        q = {"propertyName": prop, "operator": "GTE", "value": low}
        status, page = api.post(
            f"{COMPANIES}/search",
            {"filterGroups": [{"filters": [q]}], "sorts": [{"propertyName": prop}], "limit": 1},
        )
        assert status == 200
    assert page["total"] == 1 and _ids(page) == [ids[90]]
    assert searcher._index.keys() == built.keys()
    assert all(searcher._index[k] is built[k] for k in built)
