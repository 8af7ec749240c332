"""Two of our own synced companies merged in HubSpot by a person: the survivor carries one
external id (the primary's); the other is remapped to the survivor too, reported, and never
re-created. Its own desired values are not written while it is merged (docs/existing-portal.md,
"Merges"); links are kept. Names and ids written by hand from the sample warehouse (seed 11)."""

from __future__ import annotations

import pytest

from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.state.store import StateStore
from spokesync.sync.runner import SyncOptions, run_sync
from tests.portals.portal import by_id, duplicates, last_seq, merge, write_calls

pytestmark = pytest.mark.e2e


def _company(sandbox: SandboxProcess, account: str) -> str:
    (hid,) = [
        i
        for i, p in by_id(sandbox, "companies").items()
        if p.get("spokesync_account_id") == account
    ]
    return hid


def _linked(sandbox: SandboxProcess, account: str) -> dict[str, list[str]]:
    """Contacts and deals of ``account`` → the companies they are linked to in HubSpot."""
    export = sandbox.export()
    return {
        f"{t} {r['id']}": [x["id"] for x in r["associations"].get("companies", [])]
        for t in ("contacts", "deals")
        for r in export[t]
        if r["properties"].get("spokesync_account_id") == account
    }


def test_two_of_our_companies_merged_in_hubspot(
    settings: Settings, sandbox: SandboxProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    from spokesync.cli import main

    assert run_sync(settings, SyncOptions()).ok
    blue, pine = _company(sandbox, "ACC-000004"), _company(sandbox, "ACC-000005")
    assert len(_linked(sandbox, "ACC-000005")) >= 2
    # A person decides Pine Analytics is Blue Ventures and merges it in (Blue is the primary).
    survivor = merge(sandbox, "companies", blue, pine)
    held = by_id(sandbox, "companies")
    assert held[survivor]["spokesync_account_id"] == "ACC-000004"
    assert len(held) == 39

    seq = last_seq(sandbox)
    summary = run_sync(settings, SyncOptions())
    assert summary.ok, summary.to_text()
    companies = {o.object_type: o for o in summary.objects}["companies"]
    assert companies.refresh is not None and companies.refresh.mode == "incremental"
    assert companies.refresh.merges_remapped == 1  # ACC-000005 → the survivor
    assert (companies.records_new, companies.records_merged_away) == (0, 1)
    # Nothing re-created, nothing written: the survivor already holds ACC-000004's values.
    assert len(by_id(sandbox, "companies")) == 39
    assert duplicates(sandbox, "companies", "spokesync_account_id") == {}
    assert write_calls(sandbox, since_seq=seq) == {}
    held = by_id(sandbox, "companies")[survivor]
    assert (held["name"], held["domain"]) == ("Blue Ventures GmbH", "blueventures4.com")
    with StateStore(settings.state_db) as store:
        assert store.hubspot_ids("companies", ["ACC-000004", "ACC-000005"]) == {
            "ACC-000004": survivor,
            "ACC-000005": survivor,
        }
        (listed,) = store.matches.ambiguous("companies")
    assert (listed.external_id, listed.reason, listed.candidates) == (
        "ACC-000005",
        "merged_into_ours",
        [survivor],
    )
    assert (listed.rule, listed.match_key) == ("merged in HubSpot into", "ACC-000004")
    # Links kept: the contacts and deals of both accounts are linked to the survivor only.
    for account in ("ACC-000004", "ACC-000005"):
        links = _linked(sandbox, account)
        assert links and set(map(tuple, links.values())) == {(survivor,)}, links

    common = ["--home", str(settings.home), "--env", "test"]
    assert main(["state", *common, "ambiguous"]) == 0
    out = capsys.readouterr().out
    assert (
        f"| companies | ACC-000005 | merged in HubSpot into | ACC-000004 | {survivor} | "
        "merged_into_ours |"
    ) in out
    assert "spokesync state pin OBJECT EXTERNAL_ID --create" in out

    # A full refresh (the weekly one) forgets the confirmed links and re-checks them: ACC-000005
    # still resolves to the survivor, so nothing is re-created and the links stay.
    seq = last_seq(sandbox)
    full = run_sync(settings, SyncOptions(refresh="full"))
    assert full.ok, full.to_text()
    assert {o.object_type: o for o in full.objects}["companies"].records_new == 0
    assert set(write_calls(sandbox, since_seq=seq)) <= {"associations"}
    assert len(by_id(sandbox, "companies")) == 39
    for account in ("ACC-000004", "ACC-000005"):
        assert set(map(tuple, _linked(sandbox, account).values())) == {(survivor,)}
    seq = last_seq(sandbox)
    assert run_sync(settings, SyncOptions()).ok
    assert write_calls(sandbox, since_seq=seq) == {}

    # The merge was a mistake: a person pins ACC-000005 to a new record of its own.
    assert main(["state", *common, "pin", "companies", "ACC-000005", "--create"]) == 0
    seq = last_seq(sandbox)
    split = run_sync(settings, SyncOptions())
    assert split.ok, split.to_text()
    assert {o.object_type: o for o in split.objects}["companies"].records_new == 1
    assert write_calls(sandbox, since_seq=seq)["companies /batch/upsert"] == 1
    pine = _company(sandbox, "ACC-000005")
    assert pine != survivor and by_id(sandbox, "companies")[pine]["name"] == "Pine Analytics Ltd"
    assert _company(sandbox, "ACC-000004") == survivor
    with StateStore(settings.state_db) as store:
        assert store.merged.list("companies") == []
        assert store.matches.ambiguous("companies") == []
        assert store.hubspot_ids("companies", ["ACC-000005"]) == {"ACC-000005": pine}


def test_two_of_our_contacts_merged_in_hubspot(settings: Settings, sandbox: SandboxProcess) -> None:
    """Contacts are keyed by email: the survivor keeps the primary's email (the other becomes
    an additional email); the merged-away address is held, not upserted back as a contact."""
    radia, priya = "radia.garcia.1@silveranalytics1.co", "priya.haddad.2@silveranalytics1.co"
    assert run_sync(settings, SyncOptions()).ok
    people = {p["email"]: hid for hid, p in by_id(sandbox, "contacts").items()}
    count = len(people)
    survivor = merge(sandbox, "contacts", people[radia], people[priya])
    held = by_id(sandbox, "contacts")[survivor]
    assert (held["email"], held["hs_additional_emails"]) == (radia, priya)

    seq = last_seq(sandbox)
    summary = run_sync(settings, SyncOptions())
    assert summary.ok, summary.to_text()
    contacts = {o.object_type: o for o in summary.objects}["contacts"]
    assert (contacts.records_new, contacts.records_merged_away) == (0, 1)
    assert len(by_id(sandbox, "contacts")) == count - 1
    # The merge filled Radia's empty job title with Priya's; the survivor is Radia's, whose
    # warehouse row has none (null policy: clear), so that one field is cleared — the only write.
    assert held["jobtitle"] == "Data Engineer"
    assert contacts.fields_by_property == {"jobtitle": 1}
    assert write_calls(sandbox, since_seq=seq) == {"contacts /batch/upsert": 1}
    assert by_id(sandbox, "contacts")[survivor].get("jobtitle") in (None, "")
    with StateStore(settings.state_db) as store:
        assert store.hubspot_ids("contacts", [radia, priya]) == {radia: survivor, priya: survivor}
        (listed,) = store.matches.ambiguous("contacts")
    assert (listed.external_id, listed.match_key, listed.reason) == (
        priya,
        radia,
        "merged_into_ours",
    )
    links = sandbox.export("contacts")
    (record,) = [c for c in links if c["id"] == survivor]
    assert [x["id"] for x in record["associations"]["companies"]] == [
        _company(sandbox, "ACC-000001")
    ]
    seq = last_seq(sandbox)
    assert run_sync(settings, SyncOptions()).ok
    assert write_calls(sandbox, since_seq=seq) == {}
