"""Value history: each confirmed value with what it replaced, in the write-through transaction."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from spokesync.changes import ConfirmedWrite
from spokesync.events import CanonicalEvent
from spokesync.mapping import MappingSpec
from spokesync.state import StateStore
from spokesync.state import snapshot as snapshot_module
from spokesync.state.events import EVENT_CHUNK

D1 = dt.date(2026, 1, 1)
D2 = dt.date(2026, 1, 2)


def _write(
    ext: str,
    hid: str,
    props: dict[str, str],
    as_of: dt.date = D1,
    corr: str | None = None,
    event: str | None = None,
) -> ConfirmedWrite:
    return ConfirmedWrite(
        "companies", ext, hid, props, as_of, created=False, correlation_id=corr, event_id=event
    )


def test_history_keeps_old_and_new_value_of_each_confirmed_write(
    state_db: Path, accounts_mapping: MappingSpec
) -> None:
    with StateStore(state_db, [accounts_mapping]) as store:
        store.record_confirmed(
            [
                _write("A1", "11", {"name": " Acme ", "hs_lastmodifieddate": "x"}, corr="c-1"),
                _write("A2", "12", {"name": "Beta"}, corr="c-1"),
            ],
            "run-1",
        )
        store.record_confirmed(
            [_write("A1", "11", {"name": "Acme Corp"}, D2, corr="c-2", event="ev-9")], "run-2"
        )
        a1 = store.history.entries("companies", "A1")
        assert [
            (
                e.external_id,
                e.hubspot_id,
                e.property,
                e.old_value,
                e.new_value,
                e.run_id,
                e.as_of,
                e.correlation_id,
                e.event_id,
            )
            for e in a1
        ] == [
            # first write: nothing known before; the value is stored canonically (trimmed);
            # the unmanaged property is not kept, as in the snapshot
            ("A1", "11", "name", None, "Acme", "run-1", D1, "c-1", None),
            ("A1", "11", "name", "Acme", "Acme Corp", "run-2", D2, "c-2", "ev-9"),
        ]
        assert a1[0].recorded_at <= a1[1].recorded_at
        assert [(e.external_id, e.new_value) for e in store.history.entries("companies", "A2")] == [
            ("A2", "Beta")
        ]
        assert store.history.count() == 3
        assert store.history.count("contacts") == 0
        assert len(store.history.entries("companies", property="name", limit=2)) == 2
        # The snapshot holds the newest value.
        assert store.snapshot_values("companies")["A1"]["name"] == "Acme Corp"


def test_history_and_snapshot_commit_together_or_not_at_all(
    state_db: Path, accounts_mapping: MappingSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = StateStore(state_db, [accounts_mapping])
    store.record_confirmed([_write("A1", "11", {"name": "Acme"})], "run-1")

    def fail(*args: object) -> None:
        raise RuntimeError("disk full")

    # The last step of the write-through fails: history and snapshot roll back together.
    monkeypatch.setattr(snapshot_module.dead_letters, "resolve", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        store.record_confirmed([_write("A1", "11", {"name": "Acme Corp"}, D2)], "run-2")
    assert store.snapshot_values("companies") == {"A1": {"name": "Acme"}}
    assert [(e.old_value, e.new_value) for e in store.history.entries("companies")] == [
        (None, "Acme")
    ]


def test_sub_stores_are_the_facade_s_concepts(state_db: Path) -> None:
    store = StateStore(state_db)
    store.start_run("run-1", "companies", "v1", shadow=False, as_of=D1)
    # The old flat names and the sub-stores see the same file.
    assert store.snapshot.count() == store.snapshot_count() == 0
    assert store.dead_letters.letters() == store.open_dead_letters() == []
    assert store.associations.missing([]) == store.missing_associations([]) == []
    assert store.history.entries("companies") == []


def test_a_record_confirmed_twice_in_one_save_chains_its_history(
    state_db: Path, accounts_mapping: MappingSpec
) -> None:
    """Several batches saved in one transaction (the writer's group commit) may confirm the
    same record twice: the later value wins, the history holds both steps."""
    store = StateStore(state_db, [accounts_mapping])
    store.record_confirmed(
        [
            _write("A1", "11", {"name": "One"}, corr="c-1"),
            _write("A2", "12", {"name": "Two"}, corr="c-1"),
            _write("A1", "99", {"name": "One again", "numberofemployees": "7"}, corr="c-2"),
        ],
        "run-1",
    )
    assert store.snapshot_values("companies") == {
        "A1": {"name": "One again", "numberofemployees": "7"},
        "A2": {"name": "Two"},
    }
    assert store.hubspot_ids("companies", ["A1"]) == {"A1": "99"}
    assert [
        (e.external_id, e.property, e.old_value, e.new_value, e.correlation_id)
        for e in store.history.entries("companies")
    ] == [
        ("A1", "name", None, "One", "c-1"),  # first save (segment), by record and property
        ("A2", "name", None, "Two", "c-1"),
        ("A1", "name", "One", "One again", "c-2"),  # then the record's second confirmation
        ("A1", "numberofemployees", None, "7", "c-2"),
    ]


def _event(eid: str, ext: str, props: list[str], run: str = "run-1") -> CanonicalEvent:
    return CanonicalEvent(
        event_id=eid,
        type="account_enriched",
        object_type="companies",
        external_ids={"companies": ext},
        occurred_at=dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC),
        as_of=D1,
        properties=props,
        run_id=run,
    )


@pytest.mark.parametrize("chunk", [EVENT_CHUNK, 1, 2])  # events recorded a chunk at a time
def test_events_are_recorded_for_confirmed_writes_and_claim_their_history_rows(
    state_db: Path, accounts_mapping: MappingSpec, chunk: int
) -> None:
    with StateStore(state_db, [accounts_mapping]) as store:
        store.record_confirmed(
            [_write("A1", "11", {"name": "Acme", "domain": "acme.io"}), _write("A2", "12", {})],
            "run-1",
        )
        new = store.events.record(
            [
                _event("ev-1", "A1", ["name"]),
                _event("ev-2", "A1", ["name", "domain"]),  # name is ev-1's: only domain is its
                _event("ev-1", "A1", ["domain"]),  # a repeat of ev-1: not recorded twice
                _event("ev-3", "A2", ["name"]),  # nothing confirmed for A2's name: not recorded
                _event("ev-4", "A1", []),  # explains no property: recorded as it is
                _event("ev-5", "A1", ["name"], run="run-0"),  # another run's writes: no
            ],
            chunk=chunk,
        )
        assert new == 3
        assert sorted(store.events.counts().items()) == [("account_enriched", 3)]
        assert [e["event_id"] for e in store.events.events()] == ["ev-1", "ev-2", "ev-4"]
        assert {(e.property, e.event_id) for e in store.history.entries("companies", "A1")} == {
            ("name", "ev-1"),
            ("domain", "ev-2"),
        }
        assert store.events.record([_event("ev-1", "A1", ["name"])]) == 0
        unconfirmed = store.events.record([_event("ev-3", "A2", ["name"])], confirmed_only=False)
        assert unconfirmed == 1
