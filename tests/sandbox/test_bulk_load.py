"""``POST /__sandbox/bulk-load``: a file of rows becomes records exactly as ``batch/create``
would write them (values normalised, history, unique values), linked to their companies, with
write times a real push would leave; a refused row names its number and writes nothing of its
transaction."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from tests.sandbox.conftest import Api

PROPERTIES = "/crm/v3/properties"


def _unique_account_id(api: Api) -> None:
    for object_type in ("companies", "contacts"):
        status, _ = api.post(
            f"{PROPERTIES}/{object_type}",
            {
                "name": "account_key",
                "label": "Account key",
                "type": "string",
                "fieldType": "text",
                "groupName": "companyinformation"
                if object_type == "companies"
                else "contactinformation",
                "hasUniqueValue": object_type == "companies",
            },
        )
        assert status == 201


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def _load(api: Api, body: dict) -> tuple[int, dict]:
    response = api.http.post("/__sandbox/bulk-load", json=body)
    return response.status_code, response.json()


def test_companies_then_contacts_linked_to_them(api: Api, tmp_path: Path) -> None:
    _unique_account_id(api)
    companies = pa.table(
        {
            "account_key": [f"acc-{i}" for i in range(250)],
            "name": [f"Company {i}" for i in range(250)],
            "numberofemployees": ["10.50" if i == 0 else str(i) for i in range(250)],
            "not_a_property": ["ignored"] * 250,  # extra columns are not properties
        }
    )
    pq.write_table(companies, tmp_path / "companies.parquet")
    before = dt.datetime.now(dt.UTC)
    status, body = _load(
        api, {"objectType": "companies", "path": str(tmp_path / "companies.parquet")}
    )
    assert (status, body["loaded"], body["associated"]) == (200, 250, 0), body
    first_id, last_id = int(body["firstId"]), int(body["lastId"])
    assert last_id - first_id == 249
    contacts = [
        {"email": " Ada@Example.COM ", "firstname": "Ada", "account_key": "acc-0"},
        {"email": "grace@example.com", "account_key": "acc-249"},
        {"email": "linus@example.com", "account_key": "acc-unknown"},  # no such company
        {"email": "margaret@example.com", "firstname": None},
    ]
    status, body = _load(
        api,
        {
            "objectType": "contacts",
            "path": str(_jsonl(tmp_path / "contacts.jsonl", contacts)),
            "associate": {
                "toObjectType": "companies",
                "column": "account_key",
                "toProperty": "account_key",
                "labels": ["Primary"],
            },
        },
    )
    assert (status, body["loaded"], body["associated"]) == (200, 4, 2), body

    exported = {r["properties"]["account_key"]: r for r in api.export("companies")}
    assert len(exported) == 250
    # ids consecutive in row order
    assert [int(exported[f"acc-{i}"]["id"]) for i in (0, 1, 249)] == [
        first_id,
        first_id + 1,
        last_id,
    ]
    first = exported["acc-0"]
    assert first["properties"]["numberofemployees"] == "10.5"  # normalised as HubSpot stores it
    assert "not_a_property" not in first["properties"]
    stamps = Counter(r["properties"]["hs_lastmodifieddate"] for r in exported.values())
    assert sorted(stamps.values()) == [50, 100, 100]  # one write time per 100 records
    assert {r["createdAt"] for r in exported.values()} == set(stamps)
    moments = sorted(dt.datetime.fromisoformat(s.replace("Z", "+00:00")) for s in stamps)
    assert before - dt.timedelta(seconds=1) <= moments[0] < moments[-1] <= dt.datetime.now(dt.UTC)

    people = {r["properties"]["email"]: r for r in api.export("contacts")}
    assert sorted(people) == [
        "ada@example.com",
        "grace@example.com",
        "linus@example.com",
        "margaret@example.com",
    ]
    ada = people["ada@example.com"]
    assert ada["properties"]["account_key"] == "acc-0"
    assert ada["associations"] == {"companies": [{"id": first["id"], "types": [1, 279]}]}
    assert first["associations"]["contacts"] == [{"id": ada["id"], "types": [2, 280]}]
    assert people["linus@example.com"]["associations"] == {}
    assert "firstname" not in people["margaret@example.com"]["properties"]

    status, read = api.get(
        f"/crm/v3/objects/contacts/{ada['id']}?propertiesWithHistory=email,firstname"
    )
    assert status == 200
    history = read["propertiesWithHistory"]
    assert [(v["value"], v["sourceType"], v["sourceId"]) for v in history["firstname"]] == [
        ("Ada", "INTEGRATION", "1000001")
    ]
    # search finds them by email, and the upsert by email updates the loaded record
    status, found = api.post(
        "/crm/v3/objects/contacts/search",
        {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ",
                                        "value": "grace@example.com"}]}]},
    )  # fmt: skip
    assert (status, [r["id"] for r in found["results"]]) == (
        200,
        [people["grace@example.com"]["id"]],
    )
    status, upserted = api.post(
        "/crm/v3/objects/contacts/batch/upsert",
        {"inputs": [{"id": "ada@example.com", "idProperty": "email",
                     "properties": {"firstname": "Augusta"}}]},
    )  # fmt: skip
    assert status == 200
    assert [(r["id"], r["new"]) for r in upserted["results"]] == [(ada["id"], False)]


def test_a_refused_row_names_its_number_and_writes_nothing_of_its_transaction(
    api: Api, tmp_path: Path
) -> None:
    _unique_account_id(api)
    rows = [{"name": "A", "numberofemployees": "12"}, {"name": "B", "numberofemployees": "x1"}]
    status, body = _load(
        api, {"objectType": "companies", "path": str(_jsonl(tmp_path / "bad.jsonl", rows))}
    )
    assert status == 400
    assert body == {"error": "row 2: numberofemployees: x1 was not a valid long."}
    assert api.export("companies") == []

    twice = [{"name": "A", "account_key": "k1"}, {"name": "B", "account_key": "k1"}]
    status, body = _load(
        api, {"objectType": "companies", "path": str(_jsonl(tmp_path / "twice.jsonl", twice))}
    )
    assert (status, body) == (400, {"error": "row 2: account_key 'k1' is also in row 1"})

    one = [{"name": "A", "account_key": "k1"}]
    assert (
        _load(api, {"objectType": "companies", "path": str(_jsonl(tmp_path / "one.jsonl", one))})[0]
        == 200
    )
    status, body = _load(
        api, {"objectType": "companies", "path": str(_jsonl(tmp_path / "again.jsonl", one))}
    )
    assert status == 400 and body["error"].startswith("row 1: Property values were not valid")
    assert [r["properties"]["account_key"] for r in api.export("companies")] == ["k1"]

    status, body = _load(api, {"objectType": "companies", "path": str(tmp_path / "none.jsonl")})
    assert status == 400 and "no such file" in body["error"]
    status, body = _load(api, {"objectType": "companies", "path": "x", "extra": 1})
    assert status == 400
    status, body = _load(
        api,
        {
            "objectType": "contacts",
            "path": str(_jsonl(tmp_path / "c.jsonl", [{"email": "a@b.com"}])),
            "associate": {"toObjectType": "companies", "column": "x", "toProperty": "name"},
        },
    )
    assert (status, body["error"]) == (
        400,
        "name is not a unique property of companies: associate by a property with hasUniqueValue",
    )


def test_write_times_can_end_at_an_earlier_moment(api: Api, tmp_path: Path) -> None:
    """``endsAt``: the last write time is that moment, 1 ms apart per 100 records before it
    (a portal written before the refresh cursor a benchmark's state store is given)."""
    ends_at = int(dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC).timestamp() * 1000)
    pq.write_table(pa.table({"name": [f"Company {i}" for i in range(250)]}), tmp_path / "c.parquet")
    status, body = _load(
        api,
        {"objectType": "companies", "path": str(tmp_path / "c.parquet"), "endsAt": ends_at},
    )
    assert (status, body["loaded"]) == (200, 250), body
    stamps = Counter(r["properties"]["hs_lastmodifieddate"] for r in api.export("companies"))
    assert sorted(stamps.items()) == [
        ("2026-11-30T11:59:59.998Z", 100),
        ("2026-11-30T11:59:59.999Z", 100),
        ("2026-11-30T12:00:00.000Z", 50),
    ]

    future = int(dt.datetime.now(dt.UTC).timestamp() * 1000) + 60_000
    status, body = _load(
        api,
        {"objectType": "companies", "path": str(tmp_path / "c.parquet"), "endsAt": future},
    )
    assert (status, body) == (
        400,
        {"error": "endsAt needs the row count (a Parquet file) and must not be after now"},
    )
    rows = _jsonl(tmp_path / "c.jsonl", [{"name": "X"}])
    status, body = _load(api, {"objectType": "companies", "path": str(rows), "endsAt": ends_at})
    assert status == 400 and body["error"].startswith("endsAt needs the row count")
    assert len(api.export("companies")) == 250


def test_the_after_load_hook_runs_once_per_load_that_added_records(
    api: Api, tmp_path: Path
) -> None:
    """The server freezes a bulk load's records for the cycle collector
    (``spokesync.sandbox.command``); a refused load calls nothing."""
    calls: list[int] = []
    api.app.after_load = lambda: calls.append(len(api.export("companies")))
    rows = _jsonl(tmp_path / "ok.jsonl", [{"name": "A"}, {"name": "B"}])
    assert _load(api, {"objectType": "companies", "path": str(rows)})[0] == 200
    bad = _jsonl(tmp_path / "bad.jsonl", [{"name": "C", "numberofemployees": "x"}])
    assert _load(api, {"objectType": "companies", "path": str(bad)})[0] == 400
    assert calls == [2]
