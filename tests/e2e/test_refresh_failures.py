"""An error in one mapping's incremental refresh (HubSpot failing past its retries, the daily
limit) stops that mapping like any other setup error: a clear line naming the step, the other
mappings go on, the summary is printed and the exit code says what happened (real sandbox,
faults injected on the contacts search route only)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import spokesync.sync.runner as runner
from spokesync.cli import main
from spokesync.exit_codes import ExitCode
from spokesync.hubspot.client import HubSpotClient
from spokesync.hubspot.rate_limit import RateLimiter
from spokesync.hubspot.retry import RetryPolicy
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.sync.runner import SyncOptions, run_sync
from tests.e2e.conftest import rewrite_master

pytestmark = pytest.mark.e2e

CONTACTS_SEARCH = r"/contacts/search$"
NEW_NAME = "Refreshed Elsewhere Ltd"
NEW_TITLE = "Title Not Sent While Contacts Are Stopped"


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The CLI on this test's home and sandbox; HubSpot's retries in milliseconds, not
    seconds (the same policy otherwise: six attempts)."""
    monkeypatch.setenv("SPOKESYNC_HOME", str(settings.home))
    monkeypatch.setenv("SPOKESYNC_ENV", "test")
    monkeypatch.setenv("HUBSPOT_BASE_URL", settings.hubspot_base_url)
    monkeypatch.delenv("SPOKESYNC_DEBUG", raising=False)

    def fast_client(s: Settings, options: SyncOptions) -> HubSpotClient:
        limiter = RateLimiter(
            per_interval=options.rate_limit_per_10s, daily_budget=options.daily_budget
        )
        retry = RetryPolicy(base_s=0.01, cap_s=0.05, rng=random.Random(1))
        return HubSpotClient(s.hubspot_base_url, s.resolved_token(), limiter=limiter, retry=retry)

    monkeypatch.setattr(runner, "make_client", fast_client)
    return settings


def first_account_and_user(sandbox: SandboxProcess) -> tuple[str, str, str]:
    company = sorted(
        sandbox.export("companies"), key=lambda r: r["properties"]["spokesync_account_id"]
    )[0]
    contact = sorted(
        (c for c in sandbox.export("contacts") if c["properties"].get("spokesync_user_id")),
        key=lambda r: r["properties"]["spokesync_user_id"],
    )[0]
    return (
        company["properties"]["spokesync_account_id"],
        contact["properties"]["spokesync_user_id"],
        contact["properties"].get("jobtitle") or "",
    )


def held(sandbox: SandboxProcess, object_type: str, key_prop: str, key: str, prop: str) -> str:
    (record,) = [r for r in sandbox.export(object_type) if r["properties"].get(key_prop) == key]
    return record["properties"].get(prop) or ""


def line_of(out: str, object_type: str) -> str:
    return next(x for x in out.splitlines() if x.strip().startswith(object_type + " "))


@pytest.mark.parametrize("fault", ["5xx-past-retries", "daily-limit"])
def test_refresh_failing_stops_only_that_mapping_with_summary_and_exit_code(
    cli: Settings,
    sandbox: SandboxProcess,
    home: Path,
    capsys: pytest.CaptureFixture[str],
    fault: str,
) -> None:
    run_sync(cli)  # everything in HubSpot, every object has a refresh cursor
    account, user, title = first_account_and_user(sandbox)
    assert title != NEW_TITLE
    rewrite_master(home, "accounts", "account_id", account, name=NEW_NAME)
    rewrite_master(home, "users", "user_id", user, job_title=NEW_TITLE)
    if fault == "daily-limit":
        sandbox.set_faults(route_pattern=CONTACTS_SEARCH, next=["daily"])
    else:
        sandbox.set_faults(route_pattern=CONTACTS_SEARCH, status_probability={503: 1.0})
    capsys.readouterr()

    code = main(["sync", "--no-ingest"])
    out, err = capsys.readouterr()

    assert "Traceback" not in out + err
    contacts = line_of(out, "contacts")
    assert "STOPPED: refreshing the snapshot (incremental): " in contacts
    # companies came first and went on: its change is in HubSpot; the contact's is not
    assert held(sandbox, "companies", "spokesync_account_id", account, "name") == NEW_NAME
    assert held(sandbox, "contacts", "spokesync_user_id", user, "jobtitle") == title
    if fault == "daily-limit":
        assert code == ExitCode.DAILY_BUDGET, out
        assert "daily API limit reached" in contacts and "next run" in contacts
        assert "result: daily_budget (exit 4)" in out
        # the budget is spent for the portal: the mappings after contacts stop too, each said
        for later in ("deals", "tickets"):
            assert "STOPPED: " in line_of(out, later) and "daily" in line_of(out, later)
    else:
        assert code == ExitCode.FAILED, out
        assert "HubSpot kept failing; check https://status.hubspot.com" in contacts
        assert sandbox.stats()["faults_injected"] == {"503": 6}  # six attempts, then stop
        assert "result: failed (exit 1)" in out
        for later in ("deals", "tickets"):  # after contacts, and not stopped by it
            assert "STOPPED" not in line_of(out, later)
        assert "push: ok" in line_of(out, "deals")

    # The fault is gone: the next run refreshes contacts and sends the job title.
    sandbox.set_faults()
    again = run_sync(cli)
    assert all(o.failure is None and not o.error for o in again.objects), again.to_text()
    assert held(sandbox, "contacts", "spokesync_user_id", user, "jobtitle") == NEW_TITLE
