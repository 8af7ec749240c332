"""Dead letters that do not repeat, replay from the current desired state, purge, and the CLI's
exit codes and messages for the failures a user causes or can fix (real sandbox on loopback)."""

from __future__ import annotations

import datetime as dt
import errno
from pathlib import Path

import duckdb
import pytest

from spokesync.cli import main
from spokesync.exit_codes import ExitCode
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.state.store import StateStore
from spokesync.sync.runner import SyncOptions, latest_partition, run_sync
from tests.e2e.conftest import rewrite_master, upsert_requests
from tests.e2e.test_sync_e2e import BY_TYPE, desired_state

pytestmark = pytest.mark.e2e
COMPANIES = BY_TYPE["companies"]
# A name beyond HubSpot's 65,536 characters: a value only HubSpot refuses (spokesync rejects up
# front what it can know: numbers, bools, dates, enumeration options).
TOO_LONG = "N" * 70_000


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The CLI pointed at this test's home and sandbox, through the environment."""
    monkeypatch.setenv("SPOKESYNC_HOME", str(settings.home))
    monkeypatch.setenv("SPOKESYNC_ENV", "test")
    monkeypatch.setenv("HUBSPOT_BASE_URL", settings.hubspot_base_url)
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN_TEST", raising=False)
    monkeypatch.delenv("SPOKESYNC_DEBUG", raising=False)
    return settings


def sent_ids(sandbox: SandboxProcess) -> list[str]:
    return sorted(i["id"] for c in upsert_requests(sandbox) for i in c["body"]["inputs"])


def test_rejected_records_are_parked_until_their_values_change(
    settings: Settings, sandbox: SandboxProcess, home: Path
) -> None:
    accounts = sorted(
        desired_state(settings, latest_partition(settings.warehouse_dir))["companies"]
    )
    bad = accounts[1:3]
    for account in bad:
        rewrite_master(home, "accounts", "account_id", account, name=TOO_LONG)
    first = run_sync(settings, SyncOptions(mapping_paths=[COMPANIES.path]))
    (companies,) = first.objects
    assert companies.push is not None and companies.push.records_dead_lettered == 2
    assert first.exit_code == ExitCode.DEAD_LETTERED

    # Unchanged warehouse: zero write calls, the two are parked (still not in step: exit 3).
    sandbox.clear_requests()
    second = run_sync(settings, SyncOptions(mapping_paths=[COMPANIES.path]))
    assert upsert_requests(sandbox) == []
    (companies,) = second.objects
    assert (companies.records_changed, companies.parked) == (2, 2)
    assert companies.push is not None and companies.push.write_calls == 0
    assert second.exit_code == ExitCode.DEAD_LETTERED
    assert "parked 2 (rejected before, unchanged: not sent)" in second.to_text()

    # One is fixed at the source: exactly that one is sent; the other stays parked.
    rewrite_master(home, "accounts", "account_id", bad[0], name="Fixed Name One")
    sandbox.clear_requests()
    third = run_sync(settings, SyncOptions(mapping_paths=[COMPANIES.path]))
    assert sent_ids(sandbox) == [bad[0]]
    assert third.objects[0].parked == 1
    with StateStore(settings.state_db) as store:
        assert [d.external_id for d in store.open_dead_letters("companies")] == [bad[1]]

    # A value change that is still invalid is sent once (the values changed), then parked again.
    rewrite_master(home, "accounts", "account_id", bad[1], name="M" * 70_000)
    sandbox.clear_requests()
    run_sync(settings, SyncOptions(mapping_paths=[COMPANIES.path]))
    assert sent_ids(sandbox) == [bad[1]]
    sandbox.clear_requests()
    run_sync(settings, SyncOptions(mapping_paths=[COMPANIES.path]))
    assert upsert_requests(sandbox) == []


def test_transient_dead_letters_go_again_next_run_with_their_attempts(
    settings: Settings, sandbox: SandboxProcess
) -> None:
    # Every upsert fails with 503 until the retries run out (6 attempts per batch).
    sandbox.set_faults(route_pattern="batch/upsert", status_probability={503: 1.0})
    first = run_sync(settings, SyncOptions(mapping_paths=[COMPANIES.path]))
    (companies,) = first.objects
    n = companies.records_desired
    assert companies.push is not None and companies.push.records_dead_lettered == n
    assert first.exit_code == ExitCode.DEAD_LETTERED  # found: 800 of these exited 0
    with StateStore(settings.state_db) as store:
        letters = store.open_dead_letters("companies")
    assert {d.category for d in letters} == {"RETRIES_EXHAUSTED"}
    assert {d.attempts for d in letters} == {6}

    sandbox.set_faults()
    sandbox.clear_requests()
    second = run_sync(settings, SyncOptions(mapping_paths=[COMPANIES.path]))
    (companies,) = second.objects
    assert len(sent_ids(sandbox)) == n and companies.retried == n and companies.parked == 0
    # In step with HubSpot; the sample warehouse's quarantined rows still say exit 9.
    assert second.exit_code == ExitCode.DROPPED and companies.push is not None
    assert companies.push.records_dead_lettered == 0
    with StateStore(settings.state_db) as store:
        assert store.open_dead_letters("companies") == []
        resolved = store.open_dead_letters("companies", ("resolved",))
    assert len(resolved) == n and {d.attempts for d in resolved} == {6}


def test_replay_re_plans_from_the_current_desired_state(
    cli_env: Settings, sandbox: SandboxProcess, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = cli_env
    accounts = sorted(
        desired_state(settings, latest_partition(settings.warehouse_dir))["companies"]
    )
    bad = accounts[0]
    rewrite_master(home, "accounts", "account_id", bad, name=TOO_LONG)
    run_sync(settings, SyncOptions(mapping_paths=[COMPANIES.path]))
    # The source is fixed; replay sends the fixed value, never the stored bad payload.
    rewrite_master(home, "accounts", "account_id", bad, name="Fixed Name Oy")
    sandbox.clear_requests()
    code = main(["state", "replay", "--object", "companies", "--mapping", str(COMPANIES.path)])
    out = capsys.readouterr().out
    assert code == ExitCode.DROPPED, out  # replayed in step; the sample's quarantine remains
    assert "dead-lettered 0" in out
    (call,) = upsert_requests(sandbox)
    (sent,) = call["body"]["inputs"]
    assert sent["id"] == bad and sent["properties"]["name"] == "Fixed Name Oy"
    assert "replayed 1 records of companies from the current desired state" in out
    assert "1 confirmed, 0 dead-lettered again" in out
    held = next(
        r for r in sandbox.export("companies") if r["properties"][COMPANIES.id.property] == bad
    )
    assert held["properties"]["name"] == "Fixed Name Oy"
    with StateStore(settings.state_db) as store:
        assert store.open_dead_letters("companies", ("open", "replayed")) == []


def test_purge_older_than_removes_old_letters_and_quarantine_files(
    cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from spokesync.changes import DeadLetter

    settings = cli_env
    with StateStore(settings.state_db) as store:
        store.record_dead_letters(
            [
                DeadLetter(
                    "companies", f"acct-{i}", {"properties": {}}, "VALIDATION_ERROR", "x", None, 1
                )
                for i in range(4)
            ],
            "run-old",
        )
        letters = store.open_dead_letters("companies")
        store.mark_replayed([letters[0].letter_id])
        store.dead_letters.resolve_ids("companies", ["acct-1"])
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=120)
    with duckdb.connect(str(settings.state_db)) as con:
        con.execute("UPDATE dead_letter SET last_seen = ? WHERE external_id <> 'acct-3'", [old])
    # acct-0 replayed, acct-1 resolved: both old → purged; acct-2 old but open: kept;
    # acct-3 recent: kept.
    quarantine = sorted((settings.warehouse_dir / "quarantine").glob("source=*/date=*/*.parquet"))
    assert main(["state", "purge", "--older-than", "90d"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("purged 2 dead letters and 0 quarantined rows (0 files)")
    with StateStore(settings.state_db) as store:
        left = store.open_dead_letters("companies", ("open", "replayed", "resolved"))
    assert sorted(d.external_id for d in left) == ["acct-2", "acct-3"]
    # The sample warehouse's quarantine files are from today: older than 0 days purges them.
    assert quarantine, "the sample data plants bad rows, so quarantine files exist"
    assert main(["state", "purge", "--older-than", "0d", "--include-open"]) == 0
    out = capsys.readouterr().out
    assert f"({len(quarantine)} files)" in out and "purged 2 dead letters" in out
    assert list((settings.warehouse_dir / "quarantine").glob("source=*/date=*/*.parquet")) == []


# -- exit codes and messages ---------------------------------------------------------------------


def test_wrong_token_exits_6_naming_the_variable_without_traceback(
    cli_env: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN_TEST", "pat-na1-wrong-token")
    code = main(["sync", "--no-ingest"])
    captured = capsys.readouterr()
    assert code == ExitCode.AUTH == 6
    assert "Traceback" not in captured.out + captured.err
    assert "HUBSPOT_ACCESS_TOKEN_TEST" in captured.out
    assert "pat-na1-wrong-token" not in captured.out + captured.err
    # every mapping is reported, none started after the first 401
    assert captured.out.count("not started: ") == len(BY_TYPE) - 1
    assert "result: auth (exit 6)" in captured.out


def test_missing_scope_stops_only_that_mapping_naming_scope_and_feature(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    everything_but = [
        f"crm.{kind}.{obj}.{access}"
        for kind in ("objects", "schemas")
        for obj in ("contacts", "companies", "deals")
        for access in ("read", "write")
        if (kind, obj, access) != ("schemas", "deals", "write")
    ] + [
        "tickets",
        "crm.schemas.tickets.read",
        "crm.schemas.tickets.write",
        "crm.objects.owners.read",
    ]
    token = "pat-na1-scoped-token"
    with SandboxProcess(
        tmp_path / "scoped.sqlite",
        rate_limit=1000,
        extra_args=["--token", f"{token}:{','.join(everything_but)}"],
    ) as sandbox:
        monkeypatch.setenv("SPOKESYNC_HOME", str(home))
        monkeypatch.setenv("SPOKESYNC_ENV", "test")
        monkeypatch.setenv("HUBSPOT_BASE_URL", sandbox.base_url)
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN_TEST", token)
        code = main(["sync", "--no-ingest"])
        out = capsys.readouterr().out
        assert code == ExitCode.AUTH, out
        deals_line = next(line for line in out.splitlines() if line.strip().startswith("deals"))
        assert "crm.schemas.deals.write" in deals_line
        assert "create the mapping's custom properties" in deals_line
        assert "docs/security.md" in deals_line
        # the other mappings ran: companies, contacts and tickets are all in HubSpot
        exported = sandbox.export()
        assert exported["companies"] and exported["contacts"] and exported["tickets"]
        assert exported["deals"] == []


def test_daily_budget_spent_in_setup_stops_with_summary_and_exit_4(
    cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    # 6 calls: enough to check the properties of the four mappings, not to create them all.
    code = main(["sync", "--no-ingest", "--daily-budget", "6"])
    captured = capsys.readouterr()
    assert code == ExitCode.DAILY_BUDGET == 4, captured.out
    assert "Traceback" not in captured.out + captured.err
    assert "daily API budget" in captured.out
    assert "result: daily_budget (exit 4)" in captured.out
    assert captured.out.count("as_of") == len(BY_TYPE) + 1  # head line + one per mapping


def test_state_db_locked_by_another_process_exits_7(
    cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess
    import sys
    import time

    db = cli_env.state_db
    db.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ok', flush=True);"
            " time.sleep(60)",
            str(db),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"ok"
        started = time.monotonic()
        code = main(["sync", "--no-ingest"])
        captured = capsys.readouterr()
    finally:
        holder.kill()
        holder.wait()
    assert code == ExitCode.BUSY == 7
    assert time.monotonic() - started < 60
    assert str(db) in captured.err and "Wait for the other spokesync process" in captured.err
    assert "Traceback" not in captured.out + captured.err


def test_disk_full_exits_8_and_debug_shows_the_traceback(
    cli_env: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import spokesync.state.connection as connection

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(cli_env.state_db))

    monkeypatch.setattr(connection.Path, "mkdir", full)
    code = main(["sync", "--no-ingest"])
    captured = capsys.readouterr()
    assert code == ExitCode.STORAGE == 8
    assert f"cannot write {cli_env.state_db}: the disk is full" in captured.err
    assert "Traceback" not in captured.err
    code = main(["--debug", "sync", "--no-ingest"])
    assert code == 8 and "Traceback" in capsys.readouterr().err


def test_bad_mapping_and_missing_landing_are_usage_errors(
    cli_env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("object_type: companies\nid: [not, a, mapping\n")
    code = main(["sync", "--no-ingest", "--mapping", str(broken)])
    captured = capsys.readouterr()
    assert code == ExitCode.USAGE == 2
    assert str(broken) in captured.err and "Traceback" not in captured.err
    code = main(["sync", "--landing", str(tmp_path / "nowhere")])
    captured = capsys.readouterr()
    assert code == ExitCode.USAGE
    assert str(tmp_path / "nowhere") in captured.err and "SPOKESYNC_LANDING" in captured.err
