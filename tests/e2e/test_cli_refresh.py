"""``spokesync sync --refresh``: each mode through the real CLI against the sandbox server.

After a first sync, a person renames one company (a warehouse-owned field) and another company
is deleted in HubSpot. ``--refresh none`` reads nothing and writes nothing (the snapshot is
trusted); the default (incremental) sees the rename and restores the name but cannot see the
deletion (a search never returns deleted records); ``--refresh full`` reads every record, finds
the deleted one missing and re-creates it.
"""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from spokesync.exit_codes import ExitCode
from spokesync.mapping.loader import load_mapping
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.sync.runner import SyncOptions, default_mapping_paths, run_sync
from tests.e2e.conftest import upsert_requests

pytestmark = pytest.mark.e2e
COMPANIES = load_mapping(next(p for p in default_mapping_paths() if p.stem == "companies"))
KEY = COMPANIES.id.property


def _reads(sandbox: SandboxProcess) -> list[dict]:
    """Requests that read companies back: list pages and searches."""
    return [
        r
        for r in sandbox.requests()
        if "/objects/" in r["path"]
        and (
            (r["method"] == "GET" and r["path"].endswith("/companies"))
            or r["path"].endswith("/companies/search")
        )
    ]


def test_sync_refresh_none_incremental_and_full_through_the_cli(
    settings: Settings, sandbox: SandboxProcess
) -> None:
    owners = {f.property: f.owner for f in COMPANIES.fields}
    assert owners["name"] == "warehouse"
    first = run_sync(settings, SyncOptions(mapping_paths=[COMPANIES.path]))
    (companies,) = first.objects
    assert companies.push is not None and companies.push.records_created == 40
    by_key = {r["properties"][KEY]: r for r in sandbox.export("companies")}
    renamed, deleted = sorted(by_key)[:2]
    name = by_key[renamed]["properties"]["name"]
    sandbox.edit_as_person("companies", by_key[renamed]["id"], {"name": "Renamed By Sales"})
    response = httpx.delete(
        f"{sandbox.base_url}/crm/v3/objects/companies/{by_key[deleted]['id']}",
        headers={"Authorization": f"Bearer {sandbox.token}"},
    )
    assert response.status_code == 204, response.text
    assert len(sandbox.export("companies")) == 39
    env = {
        **os.environ,
        "SPOKESYNC_HOME": str(settings.home),
        "SPOKESYNC_ENV": "test",
        "HUBSPOT_BASE_URL": sandbox.base_url,
    }

    def cli(*args: str) -> str:
        sandbox.clear_requests()
        done = subprocess.run(
            [sys.executable, "-m", "spokesync.cli", "sync", "--no-ingest"]
            + ["--mapping", str(COMPANIES.path), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        # 9: in step, but the sample warehouse's planted bad rows were quarantined at ingest
        assert done.returncode == ExitCode.DROPPED, done.stdout[-2000:] + done.stderr[-3000:]
        return done.stdout

    # none: not one read, not one write; the rename stands and the deleted company stays gone.
    out = cli("--refresh", "none")
    assert _reads(sandbox) == [] and upsert_requests(sandbox) == []
    assert "refresh:" not in out
    assert "changed       0" in out
    current = {r["properties"][KEY]: r for r in sandbox.export("companies")}
    assert current[renamed]["properties"]["name"] == "Renamed By Sales"
    assert deleted not in current

    # incremental (the default): the search finds the rename but not the deleted record
    # (HubSpot's search skips deleted records); exactly the name is written back.
    out = cli()
    assert {r["method"] for r in _reads(sandbox)} == {"POST"}  # searches, no list pages
    assert [
        (i["id"], i["properties"]) for c in upsert_requests(sandbox) for i in c["body"]["inputs"]
    ] == [(renamed, {"name": name})]
    assert "    refresh: incremental: read " in out
    assert ", 1 value drifted on 1 record\n" in out
    current = {r["properties"][KEY]: r for r in sandbox.export("companies")}
    assert current[renamed]["properties"]["name"] == name
    assert deleted not in current

    # full: every record read in list pages; the deleted company is missing and re-created
    # with every property, and nothing else is written.
    out = cli("--refresh", "full")
    assert {r["method"] for r in _reads(sandbox)} == {"GET"}  # list pages, no searches
    assert [i["id"] for c in upsert_requests(sandbox) for i in c["body"]["inputs"]] == [deleted]
    assert "    refresh: full: read 39 records (1 call), 0 values drifted on 0 records, " in out
    assert "1 record missing in HubSpot\n" in out
    assert "(created 1)" in out
    current = {r["properties"][KEY]: r for r in sandbox.export("companies")}
    assert len(current) == 40
    assert current[deleted]["id"] != by_key[deleted]["id"]
    assert current[deleted]["properties"]["name"] == by_key[deleted]["properties"]["name"]
