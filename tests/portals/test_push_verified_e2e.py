"""A large push's own writes are counted while it runs, so the next day's refresh skips them
and reads only what someone else modified (real sandbox, real sync runs).

Scaled down as in test_own_writes_e2e: every push counts as large (``READBACK_LIMIT`` 0),
batches of 5 one at a time, parts of 5 writes (one batch each), and no index lag (the
sandbox's search is current at once, so the counting may follow the writes immediately)."""

from __future__ import annotations

import json
import time
from typing import Any

import duckdb
import pytest

from spokesync.hubspot.push import PushConfig
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.sync import own_window, verify_push
from spokesync.sync.runner import SyncOptions, default_mapping_paths, run_sync
from tests.portals.portal import by_id, last_seq, person_creates, person_edits, write_calls
from tests.portals.test_own_writes_e2e import _known

pytestmark = pytest.mark.e2e

PATHS = [p for p in default_mapping_paths() if p.stem in ("companies", "contacts")]


def _searches(sandbox: SandboxProcess, since_seq: int, object_type: str, kind: str) -> int:
    """Search calls of one kind since ``since_seq``: ``inc`` (the refresh), ``verify``."""
    return sum(
        1
        for r in sandbox.requests(method="POST", since_seq=since_seq)
        if r["path"].endswith(f"/{object_type}/search") and f"-{kind}-" in r["request_id"]
    )


def test_the_day_after_reads_only_what_others_modified(
    settings: Settings, sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(own_window, "READBACK_LIMIT", 0)
    monkeypatch.setattr(own_window, "PART_RECORDS", 5)
    monkeypatch.setattr(verify_push, "LAG_MS", 0)
    # During the companies push, as its second batch is confirmed (before the counting sees
    # it): a person renames a company the first batch wrote, and creates one we never write.
    real_saw = verify_push.PushVerifier.saw
    batches: list[list[str]] = []
    during: dict[str, str] = {}

    def saw(self: verify_push.PushVerifier, writes: list[Any]) -> None:
        if self.object_type == "companies" and not during:
            batches.append([w.hubspot_id for w in writes])
            if len(batches) == 2:
                during["renamed"] = batches[0][0]
                during["name"] = by_id(sandbox, "companies")[batches[0][0]]["name"]
                person_edits(sandbox, "companies", batches[0][0], name="Renamed mid-push")
                during["stranger"] = person_creates(
                    sandbox, "companies", name="Not ours", domain="not-ours.example"
                )
        real_saw(self, writes)

    monkeypatch.setattr(verify_push.PushVerifier, "saw", saw)
    options = SyncOptions(mapping_paths=PATHS, push=PushConfig(batch_size=5, concurrency=1))

    seq = last_seq(sandbox)
    first = run_sync(settings, options)
    assert first.ok, first.to_text()
    companies, contacts = by_id(sandbox, "companies"), by_id(sandbox, "contacts")
    ours_c = {i: p for i, p in companies.items() if p.get("spokesync_account_id")}
    n_c, n_ct = len(ours_c), len(contacts)
    known_c, known_ct = _known(settings, "companies"), _known(settings, "contacts")
    # every batch of 5 has its own millisecond: one part per batch
    assert len(set(known_c.values())) == -(-n_c // 5)
    assert len(set(known_ct.values())) == -(-n_ct // 5)
    times = sorted(set(known_c.values()))
    modified = {
        k: verify_push.epoch_ms(companies[during[k]]["hs_lastmodifieddate"])
        for k in ("renamed", "stranger")
    }
    # both landed after the second batch and before the third: in the second part
    assert times[1] < modified["renamed"] <= modified["stranger"] < times[2]

    # The first sync counted every part of both pushes, one search each, no other search:
    # contacts all proved; companies all but the first (which lost the renamed company)
    # and the second (which holds it now, and the stranger).
    by_type = {o.object_type: o for o in first.objects}
    vc, vct = by_type["companies"].own_writes, by_type["contacts"].own_writes
    assert vc is not None and vct is not None
    assert (vc.counts, vct.counts) == (-(-n_c // 5), -(-n_ct // 5))
    assert _searches(sandbox, seq, "companies", "verify") == vc.counts
    assert _searches(sandbox, seq, "contacts", "verify") == vct.counts
    assert _searches(sandbox, seq, "companies", "inc") == 0  # the first refresh is full
    assert (vc.parts_unverified, vc.records_verified, vc.records_left) == (2, n_c - 10, 10)
    assert (vct.parts_unverified, vct.records_verified, vct.records_left) == (0, n_ct, 0)
    assert (
        f"own writes: {vc.counts} parts counted beside the push, {n_c - 10} records proved, 10 left"
        in first.to_text()
    )
    con = duckdb.connect(str(settings.state_db), read_only=True)
    try:
        recorded = con.execute(
            "SELECT object_type, counts FROM sync_runs WHERE run_id = $r ORDER BY 1",
            {"r": first.run_id},
        ).fetchall()
    finally:
        con.close()
    assert [(ot, json.loads(c)["own_writes_counts"]) for ot, c in recorded] == [
        ("companies", vc.counts),
        ("contacts", vct.counts),
    ]

    # After the sync, as people in the CRM UI: a warehouse-owned and a hubspot-owned field.
    account = next(i for i in sorted(ours_c) if known_c[i] >= times[2])  # in a proved part
    plan = ours_c[account]["spokesync_plan"]
    edited = "starter" if plan != "starter" else "growth"
    person_edits(sandbox, "companies", account, spokesync_plan=edited)
    by_email = {p["email"]: i for i, p in contacts.items()}
    renamed, staged = by_email[sorted(by_email)[0]], by_email[sorted(by_email)[1]]
    first_name = contacts[renamed]["firstname"]
    person_edits(sandbox, "contacts", renamed, firstname="Someone")
    person_edits(sandbox, "contacts", staged, lifecyclestage="evangelist")

    # HubSpot's (and the sandbox's) 5 searches a second hold across processes: the first
    # sync's last counts were just now, and a new client cannot know them.
    time.sleep(1.1)
    seq = last_seq(sandbox)
    second = run_sync(settings, options)
    assert second.ok, second.to_text()
    by_type = {o.object_type: o for o in second.objects}
    rc, rct = by_type["companies"].refresh, by_type["contacts"].refresh
    assert rc is not None and rct is not None and rc.mode == rct.mode == "incremental"
    # Companies: the tail (the plan edited after the sync), the second part's count (7 ≠ 5:
    # read from the count's own page: its 5 of ours, the renamed company, the stranger), the
    # first part's count (4 = 4 once the renamed company was read in the second), the head
    # (empty). The proved parts are not searched at all. 4 searches, 1 + 7 records.
    assert rc.calls == _searches(sandbox, seq, "companies", "inc") == 4
    assert (rc.count_checks, rc.known, rc.known_verified) == (2, 10, 4)
    assert rc.verified_skipped == n_c - 10
    assert rc.drift.records_read == 8
    assert sorted((s.external_id, s.property) for s in rc.drift.samples) == sorted(
        [
            (ours_c[account]["spokesync_account_id"], "spokesync_plan"),
            (ours_c[during["renamed"]]["spokesync_account_id"], "name"),
        ]
    )
    # Contacts: every part proved: the tail (the two edits) and the head. 2 searches.
    assert rct.calls == _searches(sandbox, seq, "contacts", "inc") == 2
    assert (rct.count_checks, rct.known, rct.verified_skipped) == (0, 0, n_ct)
    assert rct.drift.records_read == 2
    assert sorted(s.property for s in rct.drift.samples) == ["firstname", "lifecyclestage"]

    # Owner rules as ever: warehouse-owned values restored, the hubspot-owned one stands,
    # the stranger left alone; one batch per object, each counted as it was written.
    after_c, after_ct = by_id(sandbox, "companies"), by_id(sandbox, "contacts")
    assert after_c[account]["spokesync_plan"] == plan
    assert after_c[during["renamed"]]["name"] == during["name"]
    assert after_ct[renamed]["firstname"] == first_name
    assert after_ct[staged]["lifecyclestage"] == "evangelist"
    assert not after_c[during["stranger"]].get("spokesync_account_id")
    assert write_calls(sandbox, since_seq=seq) == {
        "companies /batch/upsert": 1,
        "contacts /batch/upsert": 1,
    }
    assert _searches(sandbox, seq, "companies", "verify") == 1
    assert _searches(sandbox, seq, "contacts", "verify") == 1
