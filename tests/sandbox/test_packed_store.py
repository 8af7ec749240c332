"""The packed record table and association index hold exactly what the dicts they replace held:
records round-trip (property order, timestamps, archived state, any text), one object per
record within a request, and the association index answers like a dict of dicts of sets after
any sequence of adds and removes."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from spokesync.sandbox import records as records_module
from spokesync.sandbox.links import AssociationIndex
from spokesync.sandbox.records import Record, RecordTable
from spokesync.sandbox.store import Store
from tests.sandbox.conftest import make_api

COMPANIES = "/crm/v3/objects/companies"


def _table() -> RecordTable:
    return RecordTable("createdate", "hs_lastmodifieddate")


def test_a_record_round_trips_with_its_order_timestamps_and_text() -> None:
    table = _table()
    props = {
        "name": 'Ünïcødé "quoted" \\ back',
        "domain": "acme.io",
        "createdate": "2026-01-01T00:00:00.000Z",
        "hs_lastmodifieddate": "2026-02-01T00:00:00.000Z",
        "note": "line\nbreak\u2028and emoji 🚀",
    }
    table.put(Record(7, dict(props), "2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.000Z"))
    # another timestamp than the properties' (a merge's survivor keeps the older createdAt)
    table.put(Record(8, {"name": "B"}, "2025-05-05T00:00:00.000Z", "2025-06-06T00:00:00.000Z"))
    table._cache.clear()  # read back from the packed values, not the kept object
    rec = table[7]
    assert list(rec.properties.items()) == list(props.items())
    assert (rec.created_at, rec.updated_at) == (
        "2026-01-01T00:00:00.000Z",
        "2026-02-01T00:00:00.000Z",
    )
    assert (rec.archived, rec.archived_at) == (False, None)
    other = table[8]
    assert other.properties == {"name": "B"}
    assert (other.created_at, other.updated_at) == (
        "2025-05-05T00:00:00.000Z",
        "2025-06-06T00:00:00.000Z",
    )
    assert len(table._patterns) == 2


def test_archived_state_pop_and_membership() -> None:
    table = _table()
    table.put(Record(1, {"name": "A"}, "t1", "t1", True, "t2"))
    table.put(Record(2, {"name": "B"}, "t1", "t1"))
    table._cache.clear()
    assert (table[1].archived, table[1].archived_at) == (True, "t2")
    assert table.is_archived(1) and not table.is_live(1)
    assert table.is_live(2) and not table.is_live(3)
    assert sorted(table) == [1, 2] and len(table) == 2 and 2 in table
    assert [(rid, v) for rid, v in table.column("name")] == [(2, "B")]  # live records only
    popped = table.pop(1)
    assert popped.properties == {"name": "A"}
    assert 1 not in table and table.get(1) is None and not table.is_archived(1)
    table.put(Record(2, {"name": "B"}, "t1", "t1", True, "t3"))
    assert list(table.column("name")) == []


def test_one_object_per_record_and_a_put_is_what_the_next_read_sees() -> None:
    table = _table()
    table.put(Record(5, {"name": "A"}, "t", "t"), cache=False)
    first = table[5]
    assert table.get(5) is first
    first.properties["name"] = "Changed"
    table.put(first)
    table._cache.clear()
    assert table[5].properties == {"name": "Changed"}


def test_beyond_the_pattern_limit_records_keep_their_names(monkeypatch) -> None:
    monkeypatch.setattr(records_module, "MAX_PATTERNS", 1)
    table = _table()
    table.put(Record(1, {"a": "1"}, "t", "t"))
    table.put(Record(2, {"b": "2", "a": "3"}, "t", "t"))
    table._cache.clear()
    assert list(table[2].properties.items()) == [("b", "2"), ("a", "3")]
    assert sorted(table.column("a")) == [(1, "1"), (2, "3")]


def test_columns_follow_patterns_made_after_the_first_read() -> None:
    table = _table()
    table.put(Record(1, {"a": "x"}, "t", "t"))
    assert list(table.column("b")) == []
    table.put(Record(2, {"b": "y", "a": "z"}, "t", "t"))
    assert sorted(table.column("b")) == [(2, "y")]
    assert sorted(table.column("a")) == [(1, "x"), (2, "z")]


class _Reference:
    """The dict of dicts of sets the index replaced (``Store.associations`` before)."""

    def __init__(self) -> None:
        self.links: dict[tuple[str, int, str], dict[int, set[int]]] = {}

    def add(self, ft: str, fid: int, tt: str, tid: int, type_id: int) -> None:
        self.links.setdefault((ft, fid, tt), {}).setdefault(tid, set()).add(type_id)

    def remove(self, ft: str, fid: int, tt: str, tid: int, type_id: int | None) -> None:
        targets = self.links.get((ft, fid, tt), {})
        types = targets.get(tid)
        if types is None:
            return
        if type_id is None:
            types.clear()
        else:
            types.discard(type_id)
        if not types:
            del targets[tid]

    def state(self) -> dict[tuple[str, int, str], dict[int, set[int]]]:
        return {k: v for k, v in self.links.items() if v}


_op = st.tuples(
    st.sampled_from(["add", "add", "remove", "remove_all"]),
    st.sampled_from(["0-1", "0-2"]),
    st.integers(10_000_001, 10_000_006),
    st.sampled_from(["0-2", "0-3"]),
    st.integers(10_000_001, 10_000_008),
    st.sampled_from([279, 1, 280, 2, 100_001]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_op, max_size=60))
def test_the_index_answers_like_a_dict_of_sets_after_any_adds_and_removes(ops) -> None:
    index, ref = AssociationIndex(), _Reference()
    for kind, ft, fid, tt, tid, type_id in ops:
        if kind == "add":
            index.add(ft, fid, tt, tid, type_id)
            ref.add(ft, fid, tt, tid, type_id)
        else:
            chosen = type_id if kind == "remove" else None
            index.remove(ft, fid, tt, tid, chosen)
            ref.remove(ft, fid, tt, tid, chosen)
    expected = ref.state()
    assert dict(index.items()) == expected
    assert len(index) == sum(len(v) for v in expected.values())
    for key, targets in expected.items():
        assert index.get(key) == targets
        assert index.target_ids(*key) == sorted(targets)
    assert index.get(("0-1", 1, "0-2"), {}) == {}
    for ft in ("0-1", "0-2"):
        for fid in range(10_000_001, 10_000_007):
            assert dict(index.of_record(ft, fid)) == {
                tt: v for (f, i, tt), v in expected.items() if (f, i) == (ft, fid)
            }


def test_a_portal_read_back_after_a_restart_is_the_same(tmp_path: Path) -> None:
    api = make_api(tmp_path)
    status, body = api.post(
        f"{COMPANIES}/batch/create",
        {"inputs": [{"properties": {"name": f"Co {i}", "domain": f"co{i}.io"}} for i in range(3)]},
    )
    assert status == 201
    ids = sorted(r["id"] for r in body["results"])
    status, _ = api.post(
        "/crm/v4/associations/companies/companies/batch/create",
        {
            "inputs": [
                {
                    "from": {"id": ids[0]},
                    "to": {"id": ids[1]},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 13}],
                }
            ]
        },
    )
    assert status == 201
    assert api.call("DELETE", f"{COMPANIES}/{ids[2]}")[0] == 204
    before = api.http.get("/__sandbox/export", params={"archived": "true"}).json()
    api.app.store.close()
    again = Store(tmp_path / "sandbox.sqlite", 12345678)
    table = again.records["0-2"]
    assert sorted(table) == [int(i) for i in ids]
    assert table[int(ids[2])].archived and table.is_archived(int(ids[2]))
    assert again.associations.get(("0-2", int(ids[0]), "0-2")) == {int(ids[1]): {450, 13}}
    assert again.associations.get(("0-2", int(ids[1]), "0-2")) == {int(ids[0]): {450, 14}}
    reopened = make_api(tmp_path)
    after = reopened.http.get("/__sandbox/export", params={"archived": "true"}).json()
    assert after == before


def test_a_search_index_survives_writes_of_another_type_only(tmp_path: Path) -> None:
    api = make_api(tmp_path)
    contacts = "/crm/v3/objects/contacts"

    def create(path: str, props: dict) -> str:
        status, body = api.post(path, {"properties": props})
        assert status == 201
        return body["id"]

    first = create(contacts, {"email": "a@example.com"})
    question = {
        "filterGroups": [
            {"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}]}
        ],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
    }

    def found() -> list[str]:
        status, body = api.post(f"{contacts}/search", question)
        assert status == 200
        return [r["id"] for r in body["results"]]

    assert found() == [first]
    index = api.app.searcher._index[("0-1", "lastmodifieddate")]
    create(COMPANIES, {"name": "Acme"})  # another type: the contacts' index is kept
    assert found() == [first]
    assert api.app.searcher._index[("0-1", "lastmodifieddate")] is index
    second = create(contacts, {"email": "b@example.com"})  # this type: rebuilt, and seen
    assert found() == [first, second]
    assert api.app.searcher._index[("0-1", "lastmodifieddate")] is not index
