"""Two portals side by side, each with its own token, state DB, sandbox and pool: one portal
throttled into 429s never slows the other."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.state.store import StateStore
from spokesync.sync.runner import SyncOptions, SyncSummary, run_sync

pytestmark = pytest.mark.e2e


def test_one_portals_429s_never_slow_the_other(tmp_path: Path, warehouse_template: Path) -> None:
    homes = {p: tmp_path / p for p in ("acme", "globex")}
    for home in homes.values():
        shutil.copytree(warehouse_template, home)
    # acme's portal answers 429 (HubSpot's body, no Retry-After) to the first upsert of each
    # of three objects: its client waits out the ten-second window each time, 10-30 s in all
    # (a random tenth of the writes made the test last 1.5-2.5 min of mostly waiting).
    acme = SandboxProcess(
        tmp_path / "acme.sqlite", rate_limit=1000, extra_args=["--token", "tok-acme"]
    )
    globex = SandboxProcess(
        tmp_path / "globex.sqlite", rate_limit=1000, extra_args=["--token", "tok-globex"]
    )
    with acme, globex:
        acme.set_faults(
            writes_only=True,
            scripts={f"/{o}/batch/upsert$": [429] for o in ("companies", "contacts", "deals")},
        )
        settings = {
            "acme": Settings.from_env(
                environ={},
                home=homes["acme"],
                env="test",
                hubspot_base_url=acme.base_url,
                hubspot_token="tok-acme",
            ),
            "globex": Settings.from_env(
                environ={},
                home=homes["globex"],
                env="test",
                hubspot_base_url=globex.base_url,
                hubspot_token="tok-globex",
            ),
        }
        results: dict[str, tuple[SyncSummary, float]] = {}
        started = time.monotonic()

        def sync(portal: str) -> None:
            summary = run_sync(settings[portal], SyncOptions())
            results[portal] = (summary, time.monotonic() - started)

        threads = [threading.Thread(target=sync, args=(p,)) for p in ("acme", "globex")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=240)
        assert not any(t.is_alive() for t in threads), "a portal's sync outlasted 240 s"
        acme_429s = len(acme.requests(status=429, limit=10_000))
        globex_429s = len(globex.requests(status=429, limit=10_000))
        exported = {"acme": acme.export(), "globex": globex.export()}

    (acme_summary, acme_s), (globex_summary, globex_s) = results["acme"], results["globex"]
    assert acme_summary.ok and globex_summary.ok
    assert acme_429s == 3  # acme was throttled …
    assert globex_429s == 0  # … globex never was
    assert all(o.push.retries == 0 for o in globex_summary.objects if o.push)
    # globex finished while acme was still waiting out its ten-second windows
    assert globex_s < acme_s - 5, (globex_s, acme_s)
    # both portals hold the same records in the end; each state DB knows only its own portal
    for object_type in ("companies", "contacts", "deals", "tickets"):
        assert len(exported["acme"][object_type]) == len(exported["globex"][object_type]) > 0
    for portal in homes:
        with StateStore(settings[portal].state_db) as store:
            ids = {r["id"] for r in exported[portal]["companies"]}
            snapshot_ids = set(
                store.hubspot_ids("companies", store.snapshot_values("companies")).values()
            )
            assert snapshot_ids == ids, portal


def test_each_portals_code_location_has_its_own_pool() -> None:
    """SPOKESYNC_HUBSPOT_POOL names the pool of every step that spends the portal's budget."""
    probe = (
        "from pipelines.definitions import defs\n"
        "g = defs.resolve_asset_graph()\n"
        "pools = {k.to_user_string(): g.get(k).pools for k in g.get_all_asset_keys()}\n"
        "print(sorted({p for ps in pools.values() if ps for p in ps}))\n"
        "print(sorted(k for k, ps in pools.items() if ps))\n"
        "print(defs.resolve_job_def('webhook_sync_job').graph.node_named("
        "'sync_webhook_records').definition.pool)\n"
    )
    env = {**os.environ, "SPOKESYNC_HUBSPOT_POOL": "hubspot_api_acme"}
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == "['hubspot_api_acme']"
    pooled = ast.literal_eval(out[1])
    assert sorted(pooled) == sorted(
        [
            "hubspot_adoption_dry_run",
            "hubspot_properties",
            "hubspot_snapshot_refresh",
            "tasks_usage_threshold_crossed",
            "list_pqa_admins",  # the list mapping spends the portal's budget too
        ]
        + [
            f"{o}_{s}"
            for o in ("companies", "contacts", "deals", "erp_subscription", "tickets")
            for s in ("changes", "push")
        ]
    )
    assert out[2] == "hubspot_api_acme"
