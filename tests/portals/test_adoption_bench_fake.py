"""The adoption benchmark's fake HubSpot behaves as HubSpot on what the figures depend on.

Its ``batch/upsert`` used to create a contact for every input, so each contact matched by its
primary email existed twice; a person's edit of the old copy then read back as drift on three
properties (``firstname``, ``spokesync_user_id``, ``lifecyclestage``) instead of one: the
"1,494 values on 900 edited records" in docs/benchmarks.md. HubSpot's upsert updates the
record holding the email and creates only when none does."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.bench_adoption import build_warehouse, run


def test_upsert_updates_the_contact_holding_the_email_and_drift_is_the_edit_alone(
    tmp_path: Path,
) -> None:
    """40 accounts, 120 users: 60 contacts exist by primary email, 6 only by an additional
    one (users 1, 21, …, 101). The sync adopts 6, upserts 60 + creates 54; a person then
    edits contacts #0 and #100 of the portal (both ours): 2 values of firstname drift."""
    build_warehouse(tmp_path, 40)
    results = asyncio.run(run(tmp_path, 40))
    assert results["portal"]["contacts"] == {"records": 120, "duplicate_emails": 0}
    first = results["contacts"]["first_sync"]
    assert (first["desired"], first["adopted"], first["created"]) == (120, 6, 54)
    refresh = results["contacts"]["refresh"]
    assert (refresh["edited"], refresh["values_drifted"], refresh["records_drifted"]) == (2, 2, 2)
    assert refresh["drifted_properties"] == ["firstname"]
