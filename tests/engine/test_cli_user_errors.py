"""Errors a user causes, through the CLI: one message naming the file or variable and what to
do, the documented exit code, never a traceback (found trying them as a new user would)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from spokesync.cli import main
from spokesync.exit_codes import ExitCode
from spokesync.failure import explain
from spokesync.hubspot.client import HubSpotClient
from spokesync.hubspot.errors import RetriesExhausted
from spokesync.hubspot.retry import RetryPolicy
from spokesync.ingest.gate import error_rate_from_env


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SPOKESYNC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SPOKESYNC_ENV", "test")
    monkeypatch.delenv("SPOKESYNC_DEBUG", raising=False)
    monkeypatch.delenv("SPOKESYNC_MAPPINGS", raising=False)
    return tmp_path / "home"


def test_a_bad_quarantine_rate_variable_is_a_usage_error_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SPOKESYNC_QUARANTINE_ERROR_RATE", "abc")
    with pytest.raises(ValueError) as caught:
        error_rate_from_env()
    failure = explain(caught.value)
    assert (failure.code, failure.expected) == (ExitCode.USAGE, True)
    assert failure.message == (
        "SPOKESYNC_QUARANTINE_ERROR_RATE must be a share between 0 and 1 (e.g. 0.05), not 'abc'"
    )
    monkeypatch.setenv("SPOKESYNC_QUARANTINE_ERROR_RATE", "0.2")
    assert error_rate_from_env() == 0.2


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--rate-limit", "0"], "argument --rate-limit: must be at least 1, not 0"),
        (["--daily-budget", "-3"], "argument --daily-budget: must be at least 0, not -3"),
        (["--concurrency", "0"], "argument --concurrency: must be at least 1, not 0"),
        (["--concurrency", "eight"], "argument --concurrency: 'eight' is not a whole number"),
    ],
)
def test_sync_refuses_impossible_numbers_as_usage_errors(
    cli_home: Path, capsys: pytest.CaptureFixture[str], args: list[str], said: str
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["sync", "--no-ingest", *args])
    err = capsys.readouterr().err
    assert done.value.code == ExitCode.USAGE == 2
    assert said in err and "Traceback" not in err


def test_a_mappings_folder_without_mappings_is_a_usage_error_not_a_green_run(
    cli_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    empty = tmp_path / "no-mappings"
    empty.mkdir()
    monkeypatch.setenv("SPOKESYNC_MAPPINGS", str(empty))
    code = main(["sync", "--no-ingest", "--shadow"])
    captured = capsys.readouterr()
    assert code == ExitCode.USAGE
    assert captured.err.strip() == (
        f"spokesync: error: {empty}: no mapping files (*.yaml) in this folder: set "
        "SPOKESYNC_MAPPINGS to the folder of your mappings, or name them with --mapping"
    )


def test_a_damaged_state_db_is_named_with_what_to_do_not_called_busy(
    cli_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = cli_home / "state" / "test.duckdb"
    db.parent.mkdir(parents=True)
    db.write_text("not a database")
    code = main(["state", "runs"])
    err = capsys.readouterr().err
    assert code == ExitCode.STORAGE == 8
    assert f"the state DB {db} is not a DuckDB database" in err
    assert "move it away to start a new one" in err
    assert "another process" not in err and "Traceback" not in err


def test_hubspot_unreachable_names_the_base_url_variable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("All connection attempts failed", request=request)

    async def go() -> None:
        client = HubSpotClient(
            "http://127.0.0.1:9",
            "pat-test",
            transport=httpx.MockTransport(refuse),
            retry=RetryPolicy(max_attempts=2, base_s=0.0, cap_s=0.0),
        )
        try:
            await client.request("GET", "/crm/properties/2026-03/companies", request_id="t")
        finally:
            await client.aclose()

    with pytest.raises(RetriesExhausted) as caught:
        asyncio.run(go())
    assert caught.value.unreachable
    failure = explain(caught.value)
    assert failure.code == ExitCode.FAILED and failure.expected
    assert "No connection to HubSpot could be made: check HUBSPOT_BASE_URL_<ENV>" in (
        failure.message
    )
