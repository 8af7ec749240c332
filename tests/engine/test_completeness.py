"""Association completeness: desired links per kind, confirmed ones, waiting ones, latest."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from spokesync.changes import ConfirmedWrite
from spokesync.completeness import latest_completeness
from spokesync.state import StateStore
from spokesync.state.completeness import LinkCompleteness

D1 = dt.date(2026, 1, 1)


def _known(store: StateStore, object_type: str, ids: dict[str, str]) -> None:
    store.record_confirmed(
        [ConfirmedWrite(object_type, ext, hid, {"name": ext}, D1, created=True) for ext, hid in ids.items()],
        "run-0",
    )  # fmt: skip


def test_measure_counts_confirmed_and_waiting_links_per_kind(tmp_path: Path) -> None:
    db = tmp_path / "state.duckdb"
    with StateStore(db) as store:
        _known(store, "deals", {"S1": "101", "S2": "102", "S3": "103"})
        _known(store, "companies", {"A1": "201", "A2": "202"})
        _known(store, "contacts", {"a@x.com": "301"})
        # HubSpot confirmed S1→A1 and the labelled S1→a@x.com; S2→A2 not yet.
        store.record_associations(
            [
                ("deals", "S1", "companies", "A1", 341, "HUBSPOT_DEFINED"),
                ("deals", "S1", "contacts", "a@x.com", 77, "USER_DEFINED"),
                # an unlabeled link of the same pair does not confirm the labelled one
                ("deals", "S2", "contacts", "a@x.com", 3, "HUBSPOT_DEFINED"),
            ],
            "run-1",
        )
        measured = store.completeness.measure(
            [
                ("deals", "S1", "companies", "A1", 341, "HUBSPOT_DEFINED", ""),
                ("deals", "S2", "companies", "A2", 341, "HUBSPOT_DEFINED", ""),
                ("deals", "S3", "companies", "A9", 341, "HUBSPOT_DEFINED", ""),  # A9 unknown
                ("deals", "S1", "contacts", "a@x.com", 77, "USER_DEFINED", "Billing contact"),
                ("deals", "S2", "contacts", "a@x.com", 77, "USER_DEFINED", "Billing contact"),
                ("deals", "S2", "contacts", "a@x.com", 77, "USER_DEFINED", "Billing contact"),
            ]
        )
    assert measured == [
        LinkCompleteness("deals", "companies", "", desired=3, confirmed=1, waiting=1),
        LinkCompleteness("deals", "contacts", "Billing contact", desired=2, confirmed=1),
    ]
    assert measured[0].share == 1 / 3
    assert measured[1].kind == "deals→contacts (Billing contact)"
    assert measured[1].key == "deals_contacts_billing_contact"
    assert measured[0].line() == "deals→companies 1/3 (33.3%), 1 waiting for a record"


def test_latest_reads_the_newest_measurement_per_kind_read_only(tmp_path: Path) -> None:
    db = tmp_path / "state.duckdb"
    assert latest_completeness(db) == []  # no store yet
    with StateStore(db) as store:
        store.completeness.record(
            "run-1",
            [
                LinkCompleteness("tickets", "contacts", "", 10, 4),
                LinkCompleteness("tickets", "companies", "", 10, 10),
            ],
        )
        store.completeness.record("run-2", [LinkCompleteness("tickets", "contacts", "", 10, 9, 1)])
        store.completeness.record("run-2", [LinkCompleteness("tasks", "companies", "", 3, 3)])
    got = [
        (m.from_type, m.to_type, m.desired, m.confirmed, m.waiting, m.run_id)
        for m in latest_completeness(db)
    ]
    assert got == [
        ("tasks", "companies", 3, 3, 0, "run-2"),
        ("tickets", "companies", 10, 10, 0, "run-1"),
        ("tickets", "contacts", 10, 9, 1, "run-2"),
    ]  # fmt: skip
    assert [m.to_type for m in latest_completeness(db, "tickets")] == ["companies", "contacts"]
