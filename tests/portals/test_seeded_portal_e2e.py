"""The first sync into the sandbox's seeded portal (records made before spokesync: matching,
duplicated by domain, merged, www/capitalised domains, additional emails, people's edits), with
HubSpot's "create and associate companies with contacts" setting ON: the sync still ends with
no extra company (companies first, adoption by domain; docs/existing-portal.md).

Expected counts written by hand from the seed (seed 7, 60 accounts, duplicates 0.1, merged
0.1): 69 companies — 24 matching an account, 2 with a www./capitalised domain, 4 survivors of a
merge, 7 domains entered twice (14 companies), 25 the warehouse does not know; 144 contacts, 5
of our users only as an additional email of a merged contact."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from spokesync.ingest.contract import MASTER_SOURCES, PARTITIONED_SOURCES
from spokesync.ingest.engine import ingest_master, ingest_partition, landed_partitions
from spokesync.sample_data.generator import GeneratorConfig, generate
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.state.store import StateStore
from spokesync.sync.runner import SyncOptions, run_sync
from tests.portals.portal import by_id, last_seq, write_calls

pytestmark = pytest.mark.e2e
START = dt.date(2026, 1, 1)
SPEC = {"seed": 7, "accounts": 60, "start": START.isoformat(), "duplicates": 0.1, "merged": 0.1}


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[Settings, SandboxProcess, dict]]:
    home = tmp_path / "home"
    generate(GeneratorConfig(accounts=60, days=2, seed=7, start=START), home / "landing")
    for source in MASTER_SOURCES:
        ingest_master(source, home / "landing", home / "warehouse", "fixture")
    for source in PARTITIONED_SOURCES:
        for day in landed_partitions(source, home / "landing"):
            ingest_partition(source, day, home / "landing", home / "warehouse", "fixture")
    with SandboxProcess(
        tmp_path / "sandbox.sqlite", rate_limit=1000, extra_args=["--auto-create-companies"]
    ) as sandbox:
        manifest = sandbox.seed_portal(SPEC)
        settings = Settings.from_env(
            environ={}, home=home, env="test", hubspot_base_url=sandbox.base_url
        )
        yield settings, sandbox, manifest


def test_first_sync_into_the_seeded_portal(seeded: tuple[Settings, SandboxProcess, dict]) -> None:
    settings, sandbox, manifest = seeded
    co, ct = manifest["companies"], manifest["contacts"]
    ambiguous = 7
    assert (len(co["matching"]), len(co["domain_variants"]), len(co["merged"])) == (24, 2, 4)
    assert (len(co["duplicated_domains"]), co["total"], ct["total"]) == (7, 69, 144)
    assert len(ct["via_additional_email"]) == 5

    # The sample data plants bad support tickets; the quarantine gate is not what this tests.
    options = SyncOptions(quarantine_error_rate=1.0)
    seq = last_seq(sandbox)
    summary = run_sync(settings, options)
    assert summary.ok, summary.to_text()
    companies = {o.object_type: o for o in summary.objects}["companies"]
    assert (companies.records_adopted, companies.records_ambiguous, companies.records_new) == (
        30,
        7,
        23,
    )
    contacts = {o.object_type: o for o in summary.objects}["contacts"]
    assert (contacts.records_adopted, contacts.records_ambiguous) == (5, 0)
    calls = write_calls(sandbox, since_seq=seq)
    assert (calls["companies /batch/update"], calls["companies /batch/upsert"]) == (1, 1)
    assert calls["contacts /batch/update"] == 1  # the 5 adopted by an additional email

    held = by_id(sandbox, "companies")
    # 69 seeded + 23 created, and none by the auto-create setting: every contact's company
    # existed (companies first) or shares the domain of one (ambiguous pairs), so HubSpot
    # associated instead of creating.
    assert len(held) == 92
    # Every adopted record now carries its account id; the ambiguous pairs carry none.
    for hid in co["matching"] + co["domain_variants"] + [m["id"] for m in co["merged"]]:
        assert held[hid].get("spokesync_account_id"), hid
    for pair in co["duplicated_domains"]:
        assert [held[h].get("spokesync_account_id") for h in pair["ids"]] == [None, None]
    # Zero duplicate companies by domain, except the pairs people made (listed as ambiguous).
    domains = Counter(
        (p.get("domain") or "").lower().removeprefix("www.")
        for p in held.values()
        if p.get("domain")
    )
    dupes = {d for d, n in domains.items() if n > 1}
    assert dupes == {p["domain"] for p in co["duplicated_domains"]}
    ids = Counter(
        p.get("spokesync_account_id") for p in held.values() if p.get("spokesync_account_id")
    )
    assert len(ids) == 60 - ambiguous and max(ids.values()) == 1
    # Zero duplicate contacts by email: no address (primary or additional) on two records.
    owners: dict[str, set[str]] = {}
    for hid, p in by_id(sandbox, "contacts").items():
        for e in [p.get("email") or "", *(p.get("hs_additional_emails") or "").split(";")]:
            if e:
                owners.setdefault(e.lower(), set()).add(hid)
    assert {e: ids for e, ids in owners.items() if len(ids) > 1} == {}
    with StateStore(settings.state_db) as store:
        listed = store.matches.ambiguous("companies")
    assert sorted(a.match_key for a in listed) == sorted(
        p["domain"] for p in co["duplicated_domains"]
    )
    assert all(len(a.candidates) == 2 for a in listed)

    seq = last_seq(sandbox)
    again = run_sync(settings, options)
    assert again.ok, again.to_text()
    assert write_calls(sandbox, since_seq=seq) == {}
