"""The sync against a real sandbox on loopback: exact calls, exact final state."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from spokesync.diff import plan_changes
from spokesync.exit_codes import ExitCode
from spokesync.hubspot.push import PushConfig
from spokesync.mapping.loader import load_mappings
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.state.store import StateStore
from spokesync.sync.runner import (
    SyncOptions,
    default_mapping_paths,
    latest_partition,
    make_client,
    refresh_snapshot,
    run_sync,
)
from tests.e2e.conftest import read_reference, rewrite_master, upsert_requests

pytestmark = pytest.mark.e2e
MAPPINGS = load_mappings(default_mapping_paths())
BY_TYPE = {m.object_type: m for m in MAPPINGS}


def desired_state(settings: Settings, as_of: dt.date) -> dict[str, dict[str, dict[str, str]]]:
    """What each object should hold in HubSpot: {type: {external_id: {property: value}}},
    computed by the engine's own diff against an empty snapshot (values as canonical strings)."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    read_reference(settings)
    empty = settings.home / "empty-state.duckdb"
    for mapping in MAPPINGS:
        with plan_changes(empty, settings.warehouse_dir, mapping, as_of) as plan:
            out[mapping.object_type] = {
                c.external_id: {k: v for k, v in c.properties.items() if v != ""}
                for batch in plan.batches(1000)
                for c in batch
            }
    return out


def assert_sandbox_matches(sandbox: SandboxProcess, expected: dict) -> None:
    """Every expected record exists exactly once, holding exactly the expected values."""
    from spokesync.canonical import canonical

    for object_type, records in expected.items():
        mapping = BY_TYPE[object_type]
        types = mapping.property_types
        exported = sandbox.export(object_type)
        keys = [r["properties"].get(mapping.id.property) for r in exported]
        dupes = [k for k, n in Counter(keys).items() if n > 1]
        assert dupes == [], f"{object_type}: duplicate records for {dupes}"
        by_key = {r["properties"][mapping.id.property]: r["properties"] for r in exported}
        assert set(by_key) == set(records), f"{object_type}: record sets differ"
        for key, props in records.items():
            held = {p: canonical(types.get(p, "string"), by_key[key].get(p)) for p in props}
            assert held == props, f"{object_type} {key}"


def assert_snapshot_within_sandbox(
    sandbox: SandboxProcess, claimed: dict[str, dict[str, dict[str, str | None]]]
) -> None:
    """Every record and value the state snapshot holds, the sandbox holds too."""
    from spokesync.canonical import canonical

    for object_type, records in claimed.items():
        mapping = BY_TYPE[object_type]
        types = mapping.property_types
        by_key = {
            r["properties"][mapping.id.property]: r["properties"]
            for r in sandbox.export(object_type)
        }
        for key, props in records.items():
            assert key in by_key, f"{object_type} {key}: in the snapshot, not in HubSpot"
            held = {p: canonical(types.get(p, "string"), by_key[key].get(p)) for p in props}
            assert held == props, f"{object_type} {key}"


def assert_associated_to_their_company(sandbox: SandboxProcess) -> None:
    """Contacts, deals and tickets are each associated to exactly their account's company,
    with HubSpot's unlabeled type for the pair (which the sync read from the labels API)."""
    default_type = {"contacts": 279, "deals": 341, "tickets": 339}
    exported = sandbox.export()
    company_by_account = {
        c["properties"]["spokesync_account_id"]: c["id"] for c in exported["companies"]
    }
    for object_type in ("contacts", "deals", "tickets"):
        assert exported[object_type]
        for record in exported[object_type]:
            account = record["properties"]["spokesync_account_id"]
            links = record["associations"].get("companies", [])
            assert [link["id"] for link in links] == [company_by_account[account]], record["id"]
            assert default_type[object_type] in links[0]["types"]


def test_first_sync_creates_all_then_zero_writes_then_exactly_one_field(
    settings: Settings, sandbox: SandboxProcess, home: Path
) -> None:
    as_of = latest_partition(settings.warehouse_dir)
    expected = desired_state(settings, as_of)

    first = run_sync(settings)
    assert first.ok
    for o in first.objects:
        n = len(expected[o.object_type])
        assert o.push is not None
        assert (o.push.records_ok, o.push.records_created) == (n, n)
        assert o.push.write_calls == -(-n // 100)  # ceil(n / 100)
        assert o.push.records_dead_lettered == 0
    assert_sandbox_matches(sandbox, expected)
    assert_associated_to_their_company(sandbox)
    # Each stage's memory is recorded: the process's peak so far never falls stage to stage.
    stages = ("refresh", "desired", "diff", "push", "associations", "finish")
    for o in first.objects:
        meta = o.to_metadata()
        peaks = [float(meta[f"stage_{s}_peak_rss_mb"]) for s in stages]
        assert peaks == sorted(peaks) and peaks[0] > 0
        assert all(0 < float(meta[f"stage_{s}_rss_mb"]) <= peaks[-1] for s in stages[2:])

    sandbox.clear_requests()
    second = run_sync(settings)
    assert [o.records_changed for o in second.objects] == [0] * len(MAPPINGS)
    assert upsert_requests(sandbox) == []

    account = sorted(expected["companies"])[0]
    rewrite_master(home, "accounts", "account_id", account, employee_count=98765)
    sandbox.clear_requests()
    third = run_sync(settings)
    calls = upsert_requests(sandbox)
    assert len(calls) == 1
    inputs = calls[0]["body"]["inputs"]
    assert len(inputs) == 1
    assert inputs[0]["id"] == account
    assert inputs[0]["idProperty"] == BY_TYPE["companies"].id.property
    assert inputs[0]["properties"] == {"numberofemployees": "98765"}
    assert sum(o.push.write_calls for o in third.objects if o.push) == 1


def test_hubspot_owned_edit_stands_warehouse_owned_is_restored(
    settings: Settings, sandbox: SandboxProcess
) -> None:
    deals = BY_TYPE["deals"]
    owned = {f.property: f.owner for f in deals.fields}
    assert owned["description"] == "hubspot" and owned["dealname"] == "warehouse"
    run_sync(settings)
    record = sandbox.export("deals")[0]
    key = record["properties"][deals.id.property]
    original_name = record["properties"]["dealname"]
    # A person edits both fields in HubSpot.
    edited = sandbox.edit_as_person(
        "deals",
        record["id"],
        {"description": "Edited By Sales", "dealname": "Renamed By Sales"},
    )
    assert edited["properties"]["description"] == "Edited By Sales"

    async def refresh() -> list:
        client = make_client(settings, SyncOptions())
        try:
            return await refresh_snapshot(settings, [deals], client, "refresh-test")
        finally:
            await client.aclose()

    (drift,) = asyncio.run(refresh())
    drifted = {(d.external_id, d.property) for d in drift.samples}
    assert {(key, "description"), (key, "dealname")} <= drifted

    sandbox.clear_requests()
    run_sync(settings, SyncOptions(mapping_paths=[deals.path]))
    calls = upsert_requests(sandbox)
    assert [i["properties"] for c in calls for i in c["body"]["inputs"]] == [
        {"dealname": original_name}
    ]
    after = next(r for r in sandbox.export("deals") if r["properties"][deals.id.property] == key)
    assert after["properties"]["description"] == "Edited By Sales"
    assert after["properties"]["dealname"] == original_name


def test_backfill_of_older_partition_keeps_newer_values(
    settings: Settings, sandbox: SandboxProcess
) -> None:
    newest = latest_partition(settings.warehouse_dir)
    run_sync(settings, SyncOptions(as_of=newest))
    before = sandbox.export()
    older = newest - dt.timedelta(days=2)
    # The older day's desired state really differs (so the guard is what holds it back).
    assert desired_state(settings, older) != desired_state(settings, newest)
    sandbox.clear_requests()
    summary = run_sync(settings, SyncOptions(as_of=older))
    assert upsert_requests(sandbox) == []
    assert all(o.records_changed == 0 for o in summary.objects)
    after = sandbox.export()
    strip = lambda d: {  # noqa: E731
        t: sorted((r["id"], sorted(r["properties"].items())) for r in rs) for t, rs in d.items()
    }
    assert strip(after) == strip(before)


def test_faults_and_429_bursts_end_in_exact_state_with_three_dead_letters(
    settings: Settings, sandbox: SandboxProcess, home: Path
) -> None:
    as_of = latest_partition(settings.warehouse_dir)
    accounts = sorted(desired_state(settings, as_of)["companies"])
    bad = accounts[3:6]
    domains = {}
    for account in bad:  # a domain beyond HubSpot's 65,536 characters: only HubSpot refuses it
        domains[account] = desired_state(settings, as_of)["companies"][account]["domain"]
        rewrite_master(home, "accounts", "account_id", account, domain="d" * 70_000 + ".example")
    # 10% 5xx on upserts, plus a 429 (HubSpot's TEN_SECONDLY_ROLLING body) on the first one.
    sandbox.set_faults(
        seed=5,
        status_probability={500: 0.04, 502: 0.03, 503: 0.03},
        route_pattern="batch/upsert",
        next=[429],
    )
    summary = run_sync(settings, SyncOptions(push=PushConfig(batch_size=10)))
    injected = sandbox.stats()["faults_injected"]
    assert injected.get("429") == 1 and sum(injected.values()) > 1, injected
    push = {o.object_type: o.push for o in summary.objects}
    assert push["companies"].records_dead_lettered == 3
    assert sum(p.records_dead_lettered for p in push.values()) == 3
    assert sum(p.rate_limited for p in push.values()) == 1
    assert sum(p.retries for p in push.values()) >= sum(injected.values())
    sandbox.set_faults()

    with StateStore(settings.state_db) as store:
        letters = store.open_dead_letters("companies")
    assert sorted(d.external_id for d in letters) == bad
    assert all(d.category == "VALIDATION_ERROR" for d in letters)

    expected = desired_state(settings, as_of)
    for account in bad:  # rejected records are not in HubSpot; all others are exact
        expected["companies"].pop(account)
    assert_sandbox_matches(sandbox, expected)

    # The warehouse is fixed: the next sync writes exactly the three, resolves their dead
    # letters, and creates the associations that were waiting for those companies.
    for account in bad:
        rewrite_master(home, "accounts", "account_id", account, domain=domains[account])
    sandbox.clear_requests()
    again = run_sync(settings)
    sent = [i["id"] for c in upsert_requests(sandbox) for i in c["body"]["inputs"]]
    assert sorted(sent) == bad
    assert sum(o.push.records_dead_lettered for o in again.objects if o.push) == 0
    with StateStore(settings.state_db) as store:
        assert store.open_dead_letters("companies") == []
    assert_sandbox_matches(sandbox, desired_state(settings, as_of))
    assert_associated_to_their_company(sandbox)


def test_sigkill_mid_push_then_rerun_finishes_exactly(
    settings: Settings, sandbox: SandboxProcess
) -> None:
    as_of = latest_partition(settings.warehouse_dir)
    expected = desired_state(settings, as_of)
    env = {
        **os.environ,
        "SPOKESYNC_HOME": str(settings.home),
        "SPOKESYNC_ENV": "test",
        "HUBSPOT_BASE_URL": sandbox.base_url,
    }
    # Properties first, at full speed; then every call takes 250 ms, one batch at a time.
    subprocess.run(
        [sys.executable, "-m", "spokesync.cli", "hubspot", "ensure-properties"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    sandbox.configure(latency_ms=250)
    cmd = [sys.executable, "-m", "spokesync.cli", "sync", "--no-ingest", "--concurrency", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while (
        time.monotonic() < deadline
        and proc.poll() is None
        and len([r for r in upsert_requests(sandbox) if r["status"] == 200]) < 2
    ):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=10)
    time.sleep(1.0)  # the request in flight at the kill still lands in the sandbox: let it
    done_before = len([r for r in upsert_requests(sandbox) if r["status"] == 200])
    assert done_before >= 2, err.decode(errors="replace")[-3000:]
    total_records = sum(len(v) for v in expected.values())
    written = sum(len(v) for v in sandbox.export().values())
    assert 0 < written < total_records, "the kill must land mid-push"
    # The snapshot never claims what HubSpot lacks: every value it holds, HubSpot holds.
    with StateStore(settings.state_db, MAPPINGS) as store:
        claimed = {m.object_type: store.snapshot_values(m.object_type) for m in MAPPINGS}
    assert_snapshot_within_sandbox(sandbox, claimed)
    saved = sum(len(v) for v in claimed.values())
    # Saving keeps up with HubSpot: unsaved are at most the batch in flight at the kill (HubSpot
    # applied it, the killed process never saw the answer) and the one confirmed last.
    assert saved > 0 and written - 200 <= saved <= written, (saved, written)

    sandbox.configure(latency_ms=0)
    sandbox.clear_requests()
    summary = run_sync(settings)
    assert summary.ok
    resent = sum(len(c["body"]["inputs"]) for c in upsert_requests(sandbox))
    # The rerun's incremental refresh first reads back what HubSpot applied since the first
    # run started (the batch the killed process never saw answered included), so exactly what
    # HubSpot lacks is sent again; nothing it holds is.
    assert resent == total_records - written
    assert_sandbox_matches(sandbox, expected)


def test_cli_sync_ingests_new_landing_files_then_shadow_then_push(
    home: Path, sandbox: SandboxProcess
) -> None:
    import shutil

    shutil.rmtree(home / "warehouse")  # only landing files: the CLI ingests them first
    env = {
        **os.environ,
        "SPOKESYNC_HOME": str(home),
        "SPOKESYNC_ENV": "test",
        "HUBSPOT_BASE_URL": sandbox.base_url,
    }

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "spokesync.cli", "sync", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        # 9: in step, but the sample warehouse's planted bad rows were quarantined at ingest
        assert done.returncode == ExitCode.DROPPED, done.stderr[-3000:]
        return done.stdout

    shadow = cli("--shadow")
    assert "product_usage" in shadow and "shadow (no writes)" in shadow
    assert upsert_requests(sandbox) == []
    assert all(len(v) == 0 for v in sandbox.export().values())

    pushed = cli()
    ingested = pushed.split("spokesync run ")[0]  # the ingest table, before the summary
    assert "product_usage" not in ingested  # landing unchanged: nothing re-ingested
    settings = Settings.from_env(
        environ={}, home=home, env="test", hubspot_base_url=sandbox.base_url
    )
    expected = desired_state(settings, latest_partition(settings.warehouse_dir))
    assert_sandbox_matches(sandbox, expected)


def test_token_never_reaches_logs_or_state_tables(
    home: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    import duckdb

    token = "pat-na1-0123-secret-4567"
    with SandboxProcess(tmp_path / "own.sqlite", extra_args=["--token", token]) as sandbox:
        settings = Settings.from_env(
            environ={"HUBSPOT_ACCESS_TOKEN_TEST": token},
            home=home,
            env="test",
            hubspot_base_url=sandbox.base_url,
        )
        assert token not in repr(settings)
        with caplog.at_level(logging.DEBUG):
            summary = run_sync(settings)
        assert summary.ok and sum(o.push.records_ok for o in summary.objects if o.push) > 0
        assert token not in caplog.text
        # The sandbox only accepts that token: a wrong one stops the mapping with a clear 401.
        wrong = Settings.from_env(
            environ={"HUBSPOT_ACCESS_TOKEN_TEST": "pat-wrong"},
            home=home,
            env="test",
            hubspot_base_url=sandbox.base_url,
        )
        refused = run_sync(wrong, SyncOptions(mapping_paths=[BY_TYPE["companies"].path]))
        (stopped,) = refused.objects
        assert stopped.error is not None and "401 INVALID_AUTHENTICATION" in stopped.error
        assert "HUBSPOT_ACCESS_TOKEN_TEST" in stopped.error and "pat-wrong" not in stopped.error
        assert int(refused.exit_code) == 6
    with duckdb.connect(str(settings.state_db), read_only=True) as con:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        for table in tables:
            dump = con.execute(f'SELECT CAST(list(t) AS VARCHAR) FROM "{table}" t').fetchone()[0]
            assert token not in (dump or ""), table


def test_backfill_never_undoes_a_value_a_newer_run_found_already_right(
    settings: Settings, sandbox: SandboxProcess, home: Path
) -> None:
    """seats: 5 on day 1, 999 on day 2, back to 5 on day 3. Syncing day 1 then day 3 writes
    nothing for day 3 (already right); a backfill of day 2 must still not write 999."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from spokesync.warehouse import partition_path

    days = [(latest_partition(settings.warehouse_dir) - dt.timedelta(days=n)) for n in (2, 1, 0)]
    wh = settings.warehouse_dir
    first = pq.read_table(partition_path(wh, "subscriptions", days[0].isoformat()))
    sub = first.column("subscription_id")[0].as_py()
    row = first.filter(pc.equal(first.column("subscription_id"), sub))
    for day, seats, hour in ((days[0], 5, 1), (days[1], 999, 2), (days[2], 5, 3)):
        path = partition_path(wh, "subscriptions", day.isoformat())
        table = pq.read_table(path)
        table = table.filter(pc.not_equal(table.column("subscription_id"), sub))
        changed = row.set_column(
            row.schema.get_field_index("seats"), row.schema.field("seats"), pa.array([seats])
        ).set_column(
            row.schema.get_field_index("updated_at"),
            row.schema.field("updated_at"),
            pa.array(
                [dt.datetime.combine(day, dt.time(hour), dt.UTC)],
                row.schema.field("updated_at").type,
            ),
        )
        pq.write_table(pa.concat_tables([table, changed.cast(table.schema)]), path)

    deals = BY_TYPE["deals"]

    def seats_in_hubspot() -> str:
        (deal,) = [r for r in sandbox.export("deals") if r["properties"][deals.id.property] == sub]
        return deal["properties"]["spokesync_seats"]

    only_deals = SyncOptions(mapping_paths=[BY_TYPE["companies"].path, deals.path])
    run_sync(settings, replace(only_deals, as_of=days[0]))
    assert seats_in_hubspot() == "5"
    run_sync(settings, replace(only_deals, as_of=days[2]))
    assert seats_in_hubspot() == "5"  # already right: day 3 had nothing to write for it
    sandbox.clear_requests()
    backfill = run_sync(settings, replace(only_deals, as_of=days[1]))
    sent = {i["id"] for c in upsert_requests(sandbox) for i in c["body"]["inputs"]}
    assert sub not in sent
    assert seats_in_hubspot() == "5"
    assert all(o.records_changed == 0 for o in backfill.objects)


def test_company_deleted_in_hubspot_is_recreated_with_its_links_after_a_refresh(
    settings: Settings, sandbox: SandboxProcess
) -> None:
    import httpx

    run_sync(settings)
    companies = BY_TYPE["companies"]
    victim = sandbox.export("companies")[0]
    response = httpx.delete(
        f"{sandbox.base_url}/crm/v3/objects/companies/{victim['id']}",
        headers={"Authorization": f"Bearer {sandbox.token}"},
    )
    assert response.status_code == 204, response.text

    async def refresh() -> list:
        client = make_client(settings, SyncOptions())
        try:
            return await refresh_snapshot(settings, MAPPINGS, client, "refresh-deleted")
        finally:
            await client.aclose()

    reports = {r.object_type: r for r in asyncio.run(refresh())}
    assert reports["companies"].records_missing == 1
    summary = run_sync(settings)
    by_type = {o.object_type: o for o in summary.objects}
    assert (by_type["companies"].records_new, by_type["companies"].push.records_created) == (1, 1)
    recreated = next(
        r
        for r in sandbox.export("companies")
        if r["properties"][companies.id.property] == victim["properties"][companies.id.property]
    )
    assert recreated["id"] != victim["id"]
    # Every contact, deal and ticket of that account links to the re-created company.
    account = victim["properties"][companies.id.property]
    exported = sandbox.export()
    linked = [
        {link["id"] for link in r["associations"].get("companies", [])}
        for t in ("contacts", "deals", "tickets")
        for r in exported[t]
        if r["properties"]["spokesync_account_id"] == account
    ]
    assert linked and all(recreated["id"] in ids for ids in linked)


def test_contact_that_moves_to_another_account_moves_its_company_link(
    settings: Settings, sandbox: SandboxProcess, home: Path
) -> None:
    run_sync(settings)
    contacts = BY_TYPE["contacts"]
    exported = sandbox.export()
    contact = exported["contacts"][0]
    old_account = contact["properties"]["spokesync_account_id"]
    new_account = next(
        c["properties"]["spokesync_account_id"]
        for c in exported["companies"]
        if c["properties"]["spokesync_account_id"] != old_account
    )
    user_id = contact["properties"]["spokesync_user_id"]
    rewrite_master(home, "users", "user_id", user_id, account_id=new_account)
    sandbox.clear_requests()
    run_sync(settings, SyncOptions(mapping_paths=[BY_TYPE["companies"].path, contacts.path]))
    archive_calls = [
        r for r in sandbox.requests(method="POST") if r["path"].endswith("/batch/labels/archive")
    ]
    assert len(archive_calls) == 1 and len(archive_calls[0]["body"]["inputs"]) == 1
    assert_associated_to_their_company(sandbox)  # exactly the new company, nothing else
