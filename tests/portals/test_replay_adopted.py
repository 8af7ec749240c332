"""A dead letter of an adopted record, replayed: the replay goes through the same adoption as a
normal plan, so it stamps our external id on the HubSpot record it matched (``batch/update`` by
its id) and never creates a second record by upserting on the external id."""

from __future__ import annotations

import pytest

from spokesync.exit_codes import ExitCode
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.state.store import StateStore
from spokesync.sync.runner import SyncOptions, run_sync
from tests.portals.portal import by_id, duplicates, last_seq, person_creates, write_calls

pytestmark = pytest.mark.e2e


def test_replayed_dead_letter_of_an_adopted_company_adopts_it(
    settings: Settings,
    sandbox: SandboxProcess,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from spokesync.cli import main

    # ACC-000001 Silver Analytics LLC, silveranalytics1.co: made by a person before spokesync.
    silver = person_creates(
        sandbox, "companies", name="Silver Analytics (old CRM)", domain="silveranalytics1.co"
    )
    # Every attempt of the adoption write fails (6 attempts: the retry budget), so the record
    # is dead-lettered; creates (batch/upsert) go through.
    sandbox.set_faults(next=[503] * 6, route_pattern=r"/companies/batch/update$")
    first = run_sync(settings, SyncOptions())
    companies = {o.object_type: o for o in first.objects}["companies"]
    assert (companies.records_adopted, companies.records_new) == (1, 39)
    assert companies.push is not None and companies.push.records_dead_lettered == 1
    with StateStore(settings.state_db) as store:
        (letter,) = store.dead_letters.letters("companies")
    assert letter.external_id == "ACC-000001"
    assert by_id(sandbox, "companies")[silver].get("spokesync_account_id") is None
    sandbox.set_faults()

    monkeypatch.setenv("HUBSPOT_BASE_URL", sandbox.base_url)
    seq = last_seq(sandbox)
    common = ["--home", str(settings.home), "--env", "test"]
    # The replayed record is in step; the exit code stays "dropped" (9) because the sample
    # warehouse's planted bad rows remain quarantined.
    code = main(["state", *common, "replay", "--object", "companies"])
    assert code == ExitCode.DROPPED, capsys.readouterr().out
    capsys.readouterr()
    # The replay adopted the same HubSpot record: one call, by its id; nothing created.
    assert write_calls(sandbox, since_seq=seq) == {"companies /batch/update": 1}
    held = by_id(sandbox, "companies")
    assert held[silver]["spokesync_account_id"] == "ACC-000001"
    assert held[silver]["name"] == "Silver Analytics LLC"
    assert len(held) == 40
    assert duplicates(sandbox, "companies", "domain") == {}
    assert duplicates(sandbox, "companies", "spokesync_account_id") == {}
    with StateStore(settings.state_db) as store:
        assert store.hubspot_ids("companies", ["ACC-000001"]) == {"ACC-000001": silver}
        assert store.dead_letters.letters("companies") == []
    # The next sync links the records of other objects that waited for the company (their
    # mappings own those links), and writes no record; the one after writes nothing.
    seq = last_seq(sandbox)
    again = run_sync(settings, SyncOptions())
    assert again.ok, again.to_text()
    assert sum(o.records_changed for o in again.objects) == 0
    assert set(write_calls(sandbox, since_seq=seq)) == {"associations"}
    linked = [
        c["id"]
        for c in sandbox.export("contacts")
        if c["properties"].get("spokesync_account_id") == "ACC-000001"
    ]
    assert linked and all(
        [x["id"] for x in c["associations"].get("companies", [])] == [silver]
        for c in sandbox.export("contacts")
        if c["id"] in linked
    )
    seq = last_seq(sandbox)
    assert run_sync(settings, SyncOptions()).ok
    assert write_calls(sandbox, since_seq=seq) == {}
