"""The first sync into a portal that already holds records: adopt, create, list ambiguous.

The portal is built before spokesync runs, as people would have: companies and contacts
without our external id (one company per matching domain, two for one domain, one unrelated),
and a contact merged in HubSpot whose old address is now an additional email. Expected values
are written by hand from the sample warehouse (seed 11, 40 accounts)."""

from __future__ import annotations

import pytest

from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.state.store import StateStore
from spokesync.sync.runner import SyncOptions, run_sync
from tests.portals.portal import by_id, duplicates, last_seq, merge, person_creates, write_calls

pytestmark = pytest.mark.e2e


def _seed_portal(sandbox: SandboxProcess) -> dict[str, str]:
    ids = {
        # ACC-000001 Silver Analytics LLC, silveranalytics1.co: one company, written differently
        "silver": person_creates(
            sandbox,
            "companies",
            name="Silver Analytics (old CRM)",
            domain="www.SilverAnalytics1.co",
            lifecyclestage="lead",
        ),
        # ACC-000002 Acme Capital LLC, acmecapital2.co: two companies, a person must choose
        "acme_a": person_creates(
            sandbox, "companies", name="Acme Capital", domain="acmecapital2.co"
        ),
        "acme_b": person_creates(sandbox, "companies", name="ACME", domain="acmecapital2.co"),
        "other": person_creates(sandbox, "companies", name="Unrelated", domain="unrelated.org"),
        # USR-0000002 priya.haddad.2@silveranalytics1.co: same primary email
        "priya": person_creates(
            sandbox, "contacts", email="priya.haddad.2@silveranalytics1.co", jobtitle="Buyer"
        ),
    }
    # USR-0000001 radia.garcia.1@silveranalytics1.co lives on as an additional email of a
    # contact merged in HubSpot, whose primary email is another address.
    old = person_creates(
        sandbox, "contacts", email="radia.old@silveranalytics1.co", lifecyclestage="evangelist"
    )
    second = person_creates(sandbox, "contacts", email="radia.garcia.1@silveranalytics1.co")
    ids["radia"] = merge(sandbox, "contacts", old, second)
    return ids


def test_first_sync_adopts_creates_and_lists_ambiguous(
    settings: Settings, sandbox: SandboxProcess
) -> None:
    ids = _seed_portal(sandbox)
    seq = last_seq(sandbox)
    summary = run_sync(settings, SyncOptions())
    assert summary.ok, summary.to_text()
    companies = {o.object_type: o for o in summary.objects}["companies"]
    assert (companies.records_adopted, companies.records_ambiguous) == (1, 1)
    assert companies.records_new == 38  # 40 accounts − 1 adopted − 1 ambiguous
    contacts = {o.object_type: o for o in summary.objects}["contacts"]
    assert contacts.records_adopted == 1  # radia, by her additional email

    held = by_id(sandbox, "companies")
    assert len(held) == 4 + 38
    silver = held[ids["silver"]]
    assert silver["spokesync_account_id"] == "ACC-000001"
    assert silver["name"] == "Silver Analytics LLC"  # warehouse-owned: the warehouse's value
    assert silver["lifecyclestage"] == "customer"  # forward-only: lead → customer (paying)
    for key in ("acme_a", "acme_b", "other"):  # nothing written to them
        assert held[ids[key]].get("spokesync_account_id") is None
    assert held[ids["acme_a"]]["name"] == "Acme Capital" and held[ids["acme_b"]]["name"] == "ACME"
    # Zero duplicates by domain, except the two people made before spokesync.
    assert duplicates(sandbox, "companies", "domain") == {"acmecapital2.co": 2}

    people = by_id(sandbox, "contacts")
    assert people[ids["radia"]]["email"] == "radia.garcia.1@silveranalytics1.co"
    assert people[ids["priya"]]["email"] == "priya.haddad.2@silveranalytics1.co"
    assert people[ids["priya"]]["jobtitle"] == "Data Engineer"  # warehouse-owned
    assert people[ids["radia"]]["firstname"] == "Radia"
    assert people[ids["radia"]]["lastname"] == "Garcia"
    assert people[ids["radia"]]["spokesync_user_id"] == "USR-0000001"
    # hubspot-owned and filled by a person before spokesync: it stands (we would say customer)
    assert people[ids["radia"]]["lifecyclestage"] == "evangelist"
    emails = [p["email"] for p in people.values()]
    assert len(emails) == len(set(emails))
    additional = {
        e for p in people.values() for e in (p.get("hs_additional_emails") or "").split(";") if e
    }
    assert additional.isdisjoint(e for e in emails if e != "radia.garcia.1@silveranalytics1.co")

    with StateStore(settings.state_db) as store:
        (ambiguous,) = store.matches.ambiguous()
    assert (ambiguous.object_type, ambiguous.external_id) == ("companies", "ACC-000002")
    assert ambiguous.candidates == sorted([ids["acme_a"], ids["acme_b"]])
    assert ambiguous.reason == "several_candidates"
    assert ambiguous.rule == "domain → domain (domain)"
    assert ambiguous.match_key == "acmecapital2.co"

    calls = write_calls(sandbox, since_seq=seq)
    assert calls["companies /batch/update"] == 1  # ⌈1 adopted / 100⌉
    assert calls["companies /batch/upsert"] == 1  # ⌈38 created / 100⌉
    assert calls["contacts /batch/update"] == 1

    # Second sync: nothing changed in the warehouse or the portal → zero writes.
    seq = last_seq(sandbox)
    again = run_sync(settings, SyncOptions())
    assert again.ok, again.to_text()
    assert write_calls(sandbox, since_seq=seq) == {}
    assert sum(o.records_changed for o in again.objects) == 0


def test_adopt_dry_run_then_pin_resolves_the_ambiguous_record(
    settings: Settings, sandbox: SandboxProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    from spokesync.cli import main

    ids = _seed_portal(sandbox)
    seq = last_seq(sandbox)
    common = ["--home", str(settings.home), "--env", "test"]
    assert main(["adopt", "--dry-run", *common, "--base-url", sandbox.base_url]) == 0
    out = capsys.readouterr().out
    assert write_calls(sandbox, since_seq=seq) == {}  # read only
    writes = [r for r in sandbox.requests(since_seq=seq) if r["method"] in ("PATCH", "PUT")]
    assert writes == []
    assert (
        "companies: 40 desired — adopt 1, create 38, ambiguous 1 (not written), update 0, "
        "unchanged 0; portal holds 4, 3 left alone; 1 read calls"
    ) in out
    assert f"adopt      ACC-000001 → HubSpot {ids['silver']} (by domain → domain (domain))" in out
    # the two Acme companies and the unrelated one are left alone
    first, second = sorted([ids["acme_a"], ids["acme_b"]])
    assert f"ambiguous  ACC-000002: several_candidates {first}, {second}" in out

    assert main(["state", *common, "ambiguous"]) == 0
    listing = capsys.readouterr().out
    assert (
        f"| companies | ACC-000002 | domain → domain (domain) | acmecapital2.co | {first}, {second} | several_candidates |"
        in listing
    )

    assert main(["state", *common, "pin", "companies", "ACC-000002", ids["acme_b"]]) == 0
    capsys.readouterr()
    summary = run_sync(settings, SyncOptions())
    assert summary.ok, summary.to_text()
    held = by_id(sandbox, "companies")
    assert held[ids["acme_b"]]["spokesync_account_id"] == "ACC-000002"
    assert held[ids["acme_b"]]["name"] == "Acme Capital LLC"
    assert held[ids["acme_a"]].get("spokesync_account_id") is None
    with StateStore(settings.state_db) as store:
        assert store.matches.ambiguous() == []
