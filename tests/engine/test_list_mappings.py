"""List mappings: validation with clear errors, the membership snapshot and its DuckDB diff,
and the client's reading of HubSpot's membership answers (both spellings, empty 2xx)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import httpx
import pytest

from spokesync.changes import ConfirmedWrite
from spokesync.hubspot.client import HubSpotClient
from spokesync.hubspot.lists import ListConfigError, change_members, ensure_list
from spokesync.mapping.list_spec import load_list_mapping, load_list_mappings
from spokesync.mapping.loader import MappingError
from spokesync.state import StateStore
from spokesync.sync.runner import DEFAULT_MAPPINGS_DIR

GOOD = """
kind: list
name: pqa_admins
list_name: "PQA admins"
object_type: contacts
id_column: email
source:
  sql: SELECT email FROM users
"""


def _write(tmp_path: Path, text: str, name: str = "l.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_shipped_list_mapping_loads() -> None:
    (spec,) = load_list_mappings(DEFAULT_MAPPINGS_DIR / "lists")
    assert (spec.name, spec.object_type, spec.processing_type) == (
        "pqa_admins",
        "contacts",
        "MANUAL",
    )
    assert spec.asset_name == "list_pqa_admins" and spec.reread_days == 7


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("object_type: contacts", "processing_type: DYNAMIC\nobject_type: contacts"),
            "processing_type: 'DYNAMIC' is not supported: a list kept equal to a SQL segment is "
            "a MANUAL (static) list",
        ),
        (('"PQA admins"', '"PQA/admins"'), "list_name: must not contain '/'"),
        (("object_type: contacts", "object_type: deals"), "object_type: Input should be"),
        (("name: pqa_admins", "name: pqa-admins"), "name: list mapping name 'pqa-admins' is not"),
        (("id_column: email", "id_column: e mail"), "id_column: id_column 'e mail' is not"),
        (("SELECT email FROM users", "DELETE FROM users"), "source.sql: must be a SELECT"),
        (("kind: list", "kind: lists"), "kind: Input should be 'list' (got 'lists')"),
        (("id_column: email", "id_column: email\nreread: 3"), "reread: Extra inputs"),
    ],
)
def test_validation_names_the_file_and_the_field(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = _write(tmp_path, GOOD.replace(*change))
    with pytest.raises(MappingError) as err:
        load_list_mapping(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_two_files_may_not_manage_the_same_list(tmp_path: Path) -> None:
    _write(tmp_path, GOOD, "a.yaml")
    _write(
        tmp_path, GOOD.replace("pqa_admins", "other").replace("PQA admins", "pqa ADMINS"), "b.yaml"
    )
    with pytest.raises(MappingError, match=r"b.yaml: list_name 'pqa ADMINS' is already managed by"):
        load_list_mappings(tmp_path)


def _contacts(store: StateStore, ids: dict[str, str]) -> None:
    store.record_confirmed(
        [
            ConfirmedWrite(
                object_type="contacts",
                external_id=e,
                hubspot_id=h,
                properties={"firstname": e[:3]},
                as_of=dt.date(2026, 1, 1),
                created=True,
            )
            for e, h in ids.items()
        ],
        "run",
    )


def test_the_diff_adds_removes_and_waits_for_records(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.duckdb") as store:
        _contacts(store, {"a@x.io": "11", "b@x.io": "12", "c@x.io": "13"})
        store.lists.set_list("seg", "7", "contacts")
        store.lists.replace_from_hubspot("seg", "contacts", ["12", "13", "99"], "run")
        assert store.lists.members("seg") == {"12": "b@x.io", "13": "c@x.io", "99": None}
        plan = store.lists.plan("seg", "contacts", ["a@x.io", "b@x.io", "new@x.io"])
        assert (plan.add, plan.remove, plan.waiting) == (["11"], ["13", "99"], ["new@x.io"])
        assert (plan.desired, plan.held) == (3, 3)
        store.lists.record_changes("seg", {"11": "a@x.io"}, ["13", "99"], "run2")
        assert store.lists.members("seg") == {"11": "a@x.io", "12": "b@x.io"}
        again = store.lists.plan("seg", "contacts", ["a@x.io", "b@x.io", "new@x.io"])
        assert (again.add, again.remove, again.waiting) == ([], [], ["new@x.io"])
        # a person's edits, seen by a read-back: one added, one removed
        assert store.lists.replace_from_hubspot("seg", "contacts", ["11", "13"], "run3") == (1, 1)
        # the list was made again in HubSpot (a new id): its old members are forgotten
        store.lists.set_list("seg", "8", "contacts")
        assert store.lists.members("seg") == {}
        assert store.lists.managed("seg").read_at is None


def _client(handler) -> HubSpotClient:  # type: ignore[no-untyped-def]
    async def no_sleep(_: float) -> None:
        return None

    return HubSpotClient(
        "http://hubspot.test",
        "token",
        transport=httpx.MockTransport(handler),
        sleep=no_sleep,
        api_version="v3",
    )


@pytest.mark.parametrize(
    ("answer", "confirmed", "added"),
    [
        (
            {"recordsIdsAdded": ["1"], "recordIdsRemoved": [], "recordIdsMissing": ["9"]},
            True,
            ["1"],
        ),
        ({"recordIdsAdded": ["1"], "recordIdsRemoved": [], "recordIdsMissing": []}, True, ["1"]),
        ({"status": "COMPLETE"}, False, []),
    ],
    ids=["spec-spelling", "older-page-spelling", "empty-2xx"],
)
def test_membership_answers_in_both_spellings_and_empty(
    answer: dict, confirmed: bool, added: list[str]
) -> None:
    seen: list[tuple[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, json.loads(request.content)))
        return httpx.Response(200, json=answer)

    async def go() -> None:
        async with _client(handler) as client:
            result = await change_members(client, "7", ["1", "9"], [], request_id="t")
            assert (result.confirmed, result.added) == (confirmed, added)
            await change_members(client, "7", ["1"], ["2"], request_id="t2")
            await change_members(client, "7", [], ["2"], request_id="t3")

    asyncio.run(go())
    assert seen == [
        ("/crm/v3/lists/7/memberships/add", ["1", "9"]),
        (
            "/crm/v3/lists/7/memberships/add-and-remove",
            {"recordIdsToAdd": ["1"], "recordIdsToRemove": ["2"]},
        ),
        ("/crm/v3/lists/7/memberships/remove", ["2"]),
    ]


def test_a_dynamic_list_of_the_name_is_refused_and_nothing_created() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.raw_path.decode()}")
        lst = {"listId": "5", "name": "PQA admins", "objectTypeId": "0-1"}
        return httpx.Response(200, json={"list": {**lst, "processingType": "DYNAMIC"}})

    async def go() -> None:
        async with _client(handler) as client:
            await ensure_list(client, "PQA admins", "contacts", known_id=None, run_id="r")

    with pytest.raises(ListConfigError, match="is DYNAMIC, not MANUAL"):
        asyncio.run(go())
    assert calls == ["GET /crm/v3/lists/object-type-id/0-1/name/PQA%20admins"]
