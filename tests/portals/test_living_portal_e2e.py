"""People edit the portal between nightly runs; records get merged in HubSpot. The incremental
refresh alone (no full refresh) brings their edits into the snapshot before the push."""

from __future__ import annotations

import pytest

from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.state.store import StateStore
from spokesync.sync.runner import SyncOptions, run_sync
from tests.portals.portal import (
    by_id,
    duplicates,
    last_seq,
    merge,
    person_creates,
    person_edits,
    write_calls,
)

pytestmark = pytest.mark.e2e


def _find(sandbox: SandboxProcess, object_type: str, prop: str, value: str) -> str:
    (hid,) = [i for i, p in by_id(sandbox, object_type).items() if p.get(prop) == value]
    return hid


def test_person_edits_restored_or_kept_through_incremental_refresh(
    fixed_settings: Settings, sandbox: SandboxProcess
) -> None:
    """The fixed warehouse (2026-01-01..03): ACC-000001 Silver Analytics LLC is on the scale
    plan; the deal SUB-000003 got the description we fill when it is empty."""
    settings = fixed_settings
    assert run_sync(settings, SyncOptions()).ok
    account, plan, edited = "ACC-000001", "scale", "starter"
    vertex = _find(sandbox, "companies", "spokesync_account_id", account)
    assert by_id(sandbox, "companies")[vertex]["spokesync_plan"] == plan
    deal = _find(sandbox, "deals", "spokesync_subscription_id", "SUB-000003")
    held = by_id(sandbox, "deals")[deal]["description"]
    assert held == "Subscription SUB-000003 (enterprise, 28 seats)"
    # A person, in the CRM UI: a warehouse-owned field and a hubspot-owned one.
    person_edits(sandbox, "companies", vertex, spokesync_plan=edited)
    person_edits(sandbox, "deals", deal, description="Renewal handled by Sam, call in March")

    seq = last_seq(sandbox)
    summary = run_sync(settings, SyncOptions())
    assert summary.ok, summary.to_text()
    by_type = {o.object_type: o for o in summary.objects}
    assert by_type["companies"].refresh is not None
    assert by_type["companies"].refresh.mode == "incremental"
    drift = by_type["companies"].refresh.drift
    assert [
        (s.external_id, s.property, s.snapshot_value, s.hubspot_value) for s in drift.samples
    ] == [(account, "spokesync_plan", plan, edited)]
    deal_drift = by_type["deals"].refresh.drift
    assert [(s.external_id, s.property) for s in deal_drift.samples] == [
        ("SUB-000003", "description")
    ]
    assert by_id(sandbox, "companies")[vertex]["spokesync_plan"] == plan  # restored
    assert by_id(sandbox, "deals")[deal]["description"] == "Renewal handled by Sam, call in March"
    # Exactly one record written: the restored company field; the deal was left alone.
    assert write_calls(sandbox, since_seq=seq) == {"companies /batch/upsert": 1}
    assert by_type["companies"].push.records_ok == 1
    # Read through search only (5/s bucket), never a full list of the objects.
    reads = [r for r in sandbox.requests(since_seq=seq) if r["method"] in ("GET", "POST")]
    lists = [r for r in reads if r["method"] == "GET" and "/objects/" in r["path"]]
    assert lists == []
    assert [r for r in reads if r["path"].endswith("/companies/search")]


def test_merge_in_hubspot_between_two_syncs_keeps_links_without_duplicates(
    settings: Settings, sandbox: SandboxProcess
) -> None:
    assert run_sync(settings, SyncOptions()).ok
    ours = _find(sandbox, "companies", "spokesync_account_id", "ACC-000004")
    # Someone had created a second Blue Ventures company and merges ours into theirs (theirs
    # is the primary, so the survivor keeps their values and gets a new id).
    theirs = person_creates(sandbox, "companies", name="Blue Ventures", domain="blueventures4.com")
    survivor = merge(sandbox, "companies", theirs, ours)
    assert survivor not in (ours, theirs)
    held = by_id(sandbox, "companies")[survivor]
    assert held["spokesync_account_id"] == "ACC-000004"  # the gap was filled from ours

    seq = last_seq(sandbox)
    summary = run_sync(settings, SyncOptions())
    assert summary.ok, summary.to_text()
    assert duplicates(sandbox, "companies", "spokesync_account_id") == {}
    assert duplicates(sandbox, "companies", "domain") == {}
    held = by_id(sandbox, "companies")[survivor]
    assert held["name"] == "Blue Ventures GmbH"  # warehouse-owned: restored on the survivor
    with StateStore(settings.state_db) as store:
        assert store.hubspot_ids("companies", ["ACC-000004"]) == {"ACC-000004": survivor}
    # The contacts of ACC-000004 are still linked to the survivor, and nothing was re-created.
    export = sandbox.export()
    linked = [
        c for c in export["contacts"] if c["properties"].get("spokesync_account_id") == "ACC-000004"
    ]
    assert linked
    for contact in linked:
        links = contact["associations"].get("companies", [])
        assert [link["id"] for link in links] == [survivor], contact["id"]
    # The deal of ACC-000004 too.
    (deal,) = [
        d for d in export["deals"] if d["properties"].get("spokesync_account_id") == "ACC-000004"
    ]
    assert [link["id"] for link in deal["associations"].get("companies", [])] == [survivor]
    calls = write_calls(sandbox, since_seq=seq)
    assert calls["companies /batch/upsert"] == 1  # the name, on ACC-000004
    assert "companies /batch/update" not in calls


def test_company_auto_created_from_a_contact_domain_is_reported_not_synced(
    settings: Settings, sandbox: SandboxProcess
) -> None:
    """HubSpot's "create and associate companies with contacts" made a second company for an
    account's domain: ours stays the one synced, the other is reported for a merge."""
    assert run_sync(settings, SyncOptions()).ok
    ours = _find(sandbox, "companies", "spokesync_account_id", "ACC-000005")
    extra = sandbox.edit_as_person(
        "companies",
        None,
        {"name": "pineanalytics5.io", "domain": "pineanalytics5.io"},
        source_type="AUTO_ASSOCIATE_BY_DOMAIN",
    )["id"]
    seq = last_seq(sandbox)
    summary = run_sync(settings, SyncOptions())
    assert summary.ok, summary.to_text()
    companies = {o.object_type: o for o in summary.objects}["companies"]
    assert (companies.records_duplicated, companies.records_new, companies.records_changed) == (
        1,
        0,
        0,
    )
    with StateStore(settings.state_db) as store:
        (dup,) = store.matches.ambiguous("companies")
    assert (dup.external_id, dup.candidates, dup.reason) == (
        "ACC-000005",
        [str(extra)],
        "duplicate_in_hubspot",
    )
    assert write_calls(sandbox, since_seq=seq) == {}
    held = by_id(sandbox, "companies")
    assert held[ours]["spokesync_account_id"] == "ACC-000005"
    assert held[str(extra)].get("spokesync_account_id") is None


def _archive(sandbox: SandboxProcess, object_type: str, hid: str) -> None:
    import httpx

    response = httpx.delete(
        f"{sandbox.base_url}/crm/v3/objects/{object_type}/{hid}",
        headers={"Authorization": f"Bearer {sandbox.token}"},
        timeout=10,
    )
    assert response.status_code == 204, response.text


@pytest.mark.parametrize("policy", ["recreate", "leave"])
def test_record_archived_in_hubspot_recreated_or_left_alone(
    settings: Settings, sandbox: SandboxProcess, tmp_path, policy: str
) -> None:
    from spokesync.sync.runner import DEFAULT_MAPPINGS_DIR

    mapping = tmp_path / "companies.yaml"
    text = (DEFAULT_MAPPINGS_DIR / "companies.yaml").read_text()
    mapping.write_text(text if policy == "recreate" else text + "archived: leave\n")
    options = SyncOptions(mapping_paths=[mapping])
    assert run_sync(settings, options).ok
    gone = _find(sandbox, "companies", "spokesync_account_id", "ACC-000007")
    _archive(sandbox, "companies", gone)

    seq = last_seq(sandbox)
    summary = run_sync(settings, SyncOptions(mapping_paths=[mapping], refresh="full"))
    assert summary.ok, summary.to_text()
    (companies,) = summary.objects
    assert companies.refresh is not None and companies.refresh.archived == 1
    assert companies.refresh.drift.records_missing == 1  # counted in drift either way
    ids = [p.get("spokesync_account_id") for p in by_id(sandbox, "companies").values()]
    if policy == "recreate":
        assert companies.records_new == 1
        assert ids.count("ACC-000007") == 1
        assert write_calls(sandbox, since_seq=seq) == {"companies /batch/upsert": 1}
    else:
        assert companies.records_new == 0
        assert "ACC-000007" not in ids
        assert write_calls(sandbox, since_seq=seq) == {}
