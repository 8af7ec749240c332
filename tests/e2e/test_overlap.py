"""The sync overlaps its mappings: the next mapping is planned while one pushes (real sandbox,
real state store, the CLI's run_sync)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from spokesync.hubspot.push import PushConfig
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.state.store import StateStore
from spokesync.sync import links, runner
from spokesync.sync.runner import DEFAULT_MAPPINGS_DIR, SyncOptions, latest_partition, run_sync
from tests.e2e.test_sync_e2e import assert_sandbox_matches, desired_state

pytestmark = pytest.mark.e2e
PATHS = [DEFAULT_MAPPINGS_DIR / "companies.yaml", DEFAULT_MAPPINGS_DIR / "contacts.yaml"]


def test_contacts_are_planned_while_companies_push(
    settings: Settings, sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The companies push does not return until the contacts plan is made (it waits up to
    30 s): a sync that planned contacts only after the companies push would fail here. The
    result is the sequential one: every record, exact write calls per object (the contacts'
    setup calls made meanwhile are not counted in the companies push), every link."""
    events: list[tuple[str, str]] = []
    contacts_planned = threading.Event()
    real_plan, real_push = runner.plan_changes, runner.push_changes

    def plan(*args: Any, **kwargs: Any) -> Any:
        object_type = args[2].object_type
        events.append(("plan start", object_type))
        made = real_plan(*args, **kwargs)
        events.append(("plan end", object_type))
        if object_type == "contacts":
            contacts_planned.set()
        return made

    async def push(client: Any, **kwargs: Any) -> Any:
        report = await real_push(client, **kwargs)
        if kwargs["object_type"] == "companies":
            for _ in range(600):
                if contacts_planned.is_set():
                    break
                await asyncio.sleep(0.05)
        events.append(("push end", kwargs["object_type"]))
        return report

    monkeypatch.setattr(runner, "plan_changes", plan)
    monkeypatch.setattr(runner, "push_changes", push)
    expected = desired_state(settings, latest_partition(settings.warehouse_dir))
    expected = {k: expected[k] for k in ("companies", "contacts")}
    sandbox.clear_requests()

    summary = run_sync(settings, SyncOptions(mapping_paths=PATHS))

    assert summary.ok, summary.to_text()
    assert events == [
        ("plan start", "companies"),
        ("plan end", "companies"),
        ("plan start", "contacts"),
        ("plan end", "contacts"),
        ("push end", "companies"),
        ("push end", "contacts"),
    ]
    for o in summary.objects:
        n = len(expected[o.object_type])
        assert o.push is not None
        assert (o.push.records_ok, o.push.records_created) == (n, n)
        assert o.push.write_calls == o.push.calls == -(-n // 100)
    contacts = summary.objects[1]
    assert [(a.pairs_sent, a.pairs_ok, a.calls) for a in contacts.associations] == [
        (len(expected["contacts"]), len(expected["contacts"]), 1)
    ]
    assert_sandbox_matches(sandbox, expected)
    with StateStore(settings.state_db) as store, store.connection.connection() as con:
        rows = con.execute(
            "SELECT object_type, status FROM sync_runs WHERE run_id = $r ORDER BY 1",
            {"r": summary.run_id},
        ).fetchall()
        attached = con.execute(
            "SELECT count(*) FROM duckdb_databases() WHERE database_name LIKE 'spokesync_plan_%'"
        ).fetchall()
    assert rows == [("companies", "success"), ("contacts", "success")]
    assert attached == [(0,)]  # every plan's working database is gone


def test_links_go_out_during_the_push_behind_their_upserts(
    settings: Settings, sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 10 pairs a call (2,000 in HubSpot; lowered so the 40-account sample needs several
    calls) and 10 records an upsert, one at a time, link calls go out while the contacts are
    still being upserted: the calls exactly ⌈contacts / 10⌉, every contact linked to exactly
    its account's company, the association snapshot exactly what HubSpot holds."""
    monkeypatch.setattr(links, "LINK_BATCH", 10)
    expected = desired_state(settings, latest_partition(settings.warehouse_dir))
    sandbox.clear_requests()

    options = SyncOptions(mapping_paths=PATHS, push=PushConfig(batch_size=10, concurrency=1))
    summary = run_sync(settings, options)

    assert summary.ok, summary.to_text()
    n = len(expected["contacts"])
    (report,) = summary.objects[1].associations
    assert (report.pairs_sent, report.pairs_ok, report.calls) == (n, n, -(-n // 10))
    log = [r for r in sandbox.requests() if r["method"] == "POST"]
    upserts = [i for i, r in enumerate(log) if r["path"].endswith("/contacts/batch/upsert")]
    link_calls = [i for i, r in enumerate(log) if r["path"].endswith("/batch/create")]
    assert len(upserts) == -(-n // 10) and len(link_calls) == -(-n // 10)
    # the link calls made during the push are not counted as the push's
    assert summary.objects[1].push is not None
    assert summary.objects[1].push.write_calls == summary.objects[1].push.calls == -(-n // 10)
    # links went out before the last upsert, and none before the first upsert was answered
    assert upserts[0] < link_calls[0] < upserts[-1]
    exported = sandbox.export()
    company_of = {r["properties"]["spokesync_account_id"]: r["id"] for r in exported["companies"]}
    contact_key = {r["id"]: r["properties"]["email"] for r in exported["contacts"]}
    for record in exported["contacts"]:
        account = record["properties"]["spokesync_account_id"]
        ids = [x["id"] for x in record["associations"].get("companies", [])]
        assert ids == [company_of[account]], record["id"]
    with StateStore(settings.state_db) as store, store.connection.connection() as con:
        recorded = con.execute(
            "SELECT from_external_id, to_external_id FROM association_snapshot "
            "WHERE from_type = 'contacts' ORDER BY 1"
        ).fetchall()
    account_of = {
        contact_key[r["id"]]: r["properties"]["spokesync_account_id"] for r in exported["contacts"]
    }
    assert recorded == sorted(account_of.items())


def test_the_companies_finish_runs_beside_the_contacts_push(
    settings: Settings, sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The companies' finish (verified marks, adoption promotion, events: state writes only)
    does not return until the contacts push has begun (it waits up to 30 s): a sync that
    pushed contacts only after it would time out here. Both finishes are done, with their
    marks and events, when the run returns."""
    contacts_pushing = threading.Event()
    order: list[str] = []
    real_finish, real_push = runner.finish_object, runner.push_changes

    def finish(store: Any, mapping: Any, *args: Any) -> None:
        if mapping.object_type == "companies":
            order.append("companies finish waits")
            order.append("overlapped" if contacts_pushing.wait(30) else "timed out")
        real_finish(store, mapping, *args)
        order.append(f"{mapping.object_type} finished")

    async def push(client: Any, **kwargs: Any) -> Any:
        if kwargs["object_type"] == "contacts":
            contacts_pushing.set()
            order.append("contacts push starts")
        return await real_push(client, **kwargs)

    monkeypatch.setattr(runner, "finish_object", finish)
    monkeypatch.setattr(runner, "push_changes", push)

    summary = run_sync(settings, SyncOptions(mapping_paths=PATHS))

    assert summary.ok, summary.to_text()
    assert order[:3] == ["companies finish waits", "contacts push starts", "overlapped"]
    assert sorted(order[3:]) == ["companies finished", "contacts finished"]
    with StateStore(settings.state_db) as store, store.connection.connection() as con:
        verified = con.execute(
            "SELECT object_type, count(*) FROM record_verified GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert verified == [
        ("companies", summary.objects[0].records_desired),
        ("contacts", summary.objects[1].records_desired),
    ]
    assert [o.stages["finish"] > 0 for o in summary.objects] == [True, True]
