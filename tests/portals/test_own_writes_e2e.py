"""The refresh after a sync does not read back what that sync wrote, yet sees people's edits:
after it, during its push, and records it never wrote (real sandbox, real sync runs).

Scaled down so the window has many parts on 40 accounts: batches of 5, every push counted
(no read-back), one part per millisecond of our writes, a count's page of one record. The
push's own counting (spokesync.sync.verify_push) proves nothing here: no part of these pushes
is 60 s old before the run ends, so the refresh does all the counting this test is about
(edits "during the push" are stamped back to the push's times after it)."""

from __future__ import annotations

import duckdb
import pytest

from spokesync.hubspot.push import PushConfig
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.sync import own_window
from spokesync.sync.runner import SyncOptions, default_mapping_paths, run_sync
from tests.portals.portal import by_id, last_seq, person_edits, write_calls

pytestmark = pytest.mark.e2e

PATHS = [p for p in default_mapping_paths() if p.stem in ("companies", "contacts")]


def _known(settings: Settings, object_type: str) -> dict[str, int]:
    """HubSpot id → the last modification the store knows (ms): HubSpot's ``updatedAt`` of
    our confirmed writes, the dates refreshes read."""
    con = duckdb.connect(str(settings.state_db), read_only=True)
    try:
        rows = con.execute(
            "SELECT hubspot_id, max(modified_ms) FROM known_modified WHERE object_type = $ot "
            "GROUP BY hubspot_id",
            {"ot": object_type},
        ).fetchall()
    finally:
        con.close()
    return {r[0]: int(r[1]) for r in rows}


def _searches(sandbox: SandboxProcess, object_type: str, since_seq: int) -> int:
    log = sandbox.requests(method="POST", since_seq=since_seq)
    return sum(1 for r in log if r["path"].endswith(f"/{object_type}/search"))


def test_refresh_reads_people_edits_not_our_own_writes(
    settings: Settings, sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(own_window, "READBACK_LIMIT", 0)
    monkeypatch.setattr(own_window, "PART_RECORDS", 1)
    monkeypatch.setattr(own_window, "COUNT_LIMIT", 1)
    options = SyncOptions(mapping_paths=PATHS, push=PushConfig(batch_size=5))
    first = run_sync(settings, options)
    assert first.ok, first.to_text()
    companies, contacts = by_id(sandbox, "companies"), by_id(sandbox, "contacts")
    own_c, own_ct = _known(settings, "companies"), _known(settings, "contacts")
    assert set(own_c) == set(companies) and set(own_ct) == set(contacts)  # every one ours
    times = sorted(set(own_c.values()))
    assert len(times) >= 3  # several batches, several milliseconds: several parts

    # After the push, as people in the CRM UI: a warehouse-owned and a hubspot-owned field.
    account = sorted(companies, key=lambda i: companies[i]["spokesync_account_id"])[0]
    plan = companies[account]["spokesync_plan"]
    edited = "starter" if plan != "starter" else "growth"
    person_edits(sandbox, "companies", account, spokesync_plan=edited)
    by_email = {p["email"]: i for i, p in contacts.items()}
    renamed, staged = by_email[sorted(by_email)[0]], by_email[sorted(by_email)[1]]
    first_name = contacts[renamed]["firstname"]
    person_edits(sandbox, "contacts", renamed, firstname="Someone")
    person_edits(sandbox, "contacts", staged, lifecyclestage="evangelist")
    # During the push (stamped at our own batches' times): a person renames a company our
    # first batch wrote, at the time of our last batch, and creates one we never write.
    early = next(i for i, ms in own_c.items() if ms == times[0])
    name = companies[early]["name"]
    sandbox.edit_as_person(
        "companies", early, {"name": "Renamed mid-push"}, timestamp=str(times[-1])
    )
    middle = times[len(times) // 2]
    stranger = str(
        sandbox.edit_as_person(
            "companies",
            None,
            {"name": "Not ours", "domain": "not-ours.example"},
            timestamp=str(middle),
        )["id"]
    )
    in_last = sum(1 for ms in own_c.values() if ms == times[-1])
    in_middle = sum(1 for ms in own_c.values() if ms == middle)

    seq = last_seq(sandbox)
    second = run_sync(settings, options)
    assert second.ok, second.to_text()
    by_type = {o.object_type: o for o in second.objects}
    rc, rct = by_type["companies"].refresh, by_type["contacts"].refresh
    assert rc is not None and rct is not None and rc.mode == rct.mode == "incremental"
    # Companies: the tail after the push (one page), a count per millisecond of ours, the
    # window's head (empty), and a second page for each part someone else wrote into (the
    # last part holds the renamed company now; the middle one the stranger). The first part,
    # which lost the renamed company, counts what the last part's read told us: no read.
    assert rc.calls == _searches(sandbox, "companies", seq) == 1 + len(times) + 1 + 2
    assert (rc.count_checks, rc.known) == (len(times), len(own_c))
    # verified: all of ours but the two parts read, and the two that moved (read elsewhere)
    assert rc.known_verified == len(own_c) - in_last - in_middle - 2
    assert rc.drift.records_drifted == 2  # the plan edited after the push, the mid-push name
    assert sorted((s.external_id, s.property) for s in rc.drift.samples) == sorted(
        [
            (companies[account]["spokesync_account_id"], "spokesync_plan"),
            (companies[early]["spokesync_account_id"], "name"),
        ]
    )
    # Contacts: nobody wrote into the push: one count per millisecond, two edits read.
    ct_times = set(own_ct.values())
    assert rct.calls == _searches(sandbox, "contacts", seq) == 1 + len(ct_times) + 1
    assert (rct.count_checks, rct.known_verified) == (len(ct_times), len(own_ct) - 2)
    assert sorted(s.property for s in rct.drift.samples) == ["firstname", "lifecyclestage"]

    # Owner rules: warehouse-owned values restored, the hubspot-owned one stands, the
    # stranger left alone.
    after_c, after_ct = by_id(sandbox, "companies"), by_id(sandbox, "contacts")
    assert after_c[account]["spokesync_plan"] == plan
    assert after_c[early]["name"] == name
    assert after_ct[renamed]["firstname"] == first_name
    assert after_ct[staged]["lifecyclestage"] == "evangelist"
    assert after_c[stranger]["name"] == "Not ours"
    assert not after_c[stranger].get("spokesync_account_id")
    assert write_calls(sandbox, since_seq=seq) == {
        "companies /batch/upsert": 1,
        "contacts /batch/upsert": 1,
    }

    # The third night: what the second night read and wrote is known too; nobody edited.
    known = _known(settings, "companies")
    seq = last_seq(sandbox)
    third = run_sync(settings, options)
    assert third.ok, third.to_text()
    rc3 = {o.object_type: o for o in third.objects}["companies"].refresh
    assert rc3 is not None and rc3.drift.records_drifted == 0
    assert rc3.known == rc3.known_verified == len(known) == len(own_c) + 1  # + the stranger
    assert rc3.count_checks == len(set(known.values()))
    assert write_calls(sandbox, since_seq=seq) == {}
