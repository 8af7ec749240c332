"""Records dropped before the push are not "everything in step": the summary line counts them
and names where to look, the exit code is 9, and `spokesync state quarantine` lists them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from spokesync.cli import main
from spokesync.exit_codes import ExitCode, worst
from spokesync.hubspot.push import PushReport
from spokesync.ingest.gate import dropped_at_ingest
from spokesync.sync.runner import ObjectSyncSummary, SyncSummary
from tests.ingest.landing import DAY, ingest, land, row


def summary(**over: object) -> ObjectSyncSummary:
    base: dict[str, object] = dict(
        object_type="contacts",
        mapping_version="v1",
        as_of=dt.date(2026, 1, 5),
        shadow=False,
        records_desired=3,
        records_changed=0,
        records_new=0,
        fields_changed=0,
        rejected_ids=0,
        duplicates=0,
        plan_markdown="",
        push=PushReport(object_type="contacts"),
    )
    return ObjectSyncSummary(**{**base, **over})  # type: ignore[arg-type]


def test_a_run_that_dropped_records_exits_9_and_says_where_to_look() -> None:
    clean = summary()
    assert clean.outcome == ExitCode.OK and "dropped" not in clean.line()
    quarantined = summary(quarantined={"users master": 2})
    assert quarantined.outcome == ExitCode.DROPPED == 9
    assert quarantined.line().endswith(
        "dropped before the push: 2 quarantined in users master (`spokesync state quarantine`)"
    )
    rejected = summary(rejected_records=1)
    assert rejected.outcome == ExitCode.DROPPED
    assert "1 rejected (`spokesync state rejected`)" in rejected.line()
    run = SyncSummary("r1", dt.date(2026, 1, 5), False, [clean, quarantined])
    assert run.exit_code == ExitCode.DROPPED
    assert run.to_text().splitlines()[-1].startswith("result: dropped (exit 9): ")
    # Dead letters (and anything worse) come first; dropped is the least serious non-zero code.
    assert worst([ExitCode.DROPPED, ExitCode.DEAD_LETTERED]) == ExitCode.DEAD_LETTERED
    assert worst([ExitCode.OK, ExitCode.DROPPED]) == ExitCode.DROPPED
    assert summary(quarantined={"users master": 2}, parked=1).outcome == ExitCode.DEAD_LETTERED
    assert quarantined.to_metadata()["rows_quarantined"] == 2


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    """Users: one good row, one without id, one superseded by a newer row of its key; a day of
    support tickets with one blank key."""
    landing, wh = tmp_path / "landing", tmp_path / "warehouse"
    users = [
        row("users", 1),
        row("users", 2, user_id=""),
        row("users", 3, updated_at="2025-01-01T00:00:00Z"),
        row("users", 3, email="ada3-new@acme.com", updated_at="2025-03-01T00:00:00Z"),
    ]
    land(landing, "users", users)
    report = ingest(landing, wh, "users")
    assert (report.rows_quarantined, report.rows_superseded) == (2, 1)
    land(
        landing,
        "support_tickets",
        [row("support_tickets", 1), row("support_tickets", 2, ticket_id="\u00a0 ")],
    )
    assert ingest(landing, wh, "support_tickets").rows_quarantined == 1
    return wh


def test_dropped_at_ingest_counts_quarantined_rows_of_the_tables_read_not_superseded(
    warehouse: Path,
) -> None:
    day = dt.date.fromisoformat(DAY)
    assert dropped_at_ingest(warehouse, ["users", "support_tickets", "accounts"], day) == {
        "support_tickets 2026-01-05": 1,
        "users master": 1,  # the row without id; the superseded row's key was loaded
    }
    assert dropped_at_ingest(warehouse, ["users"], day + dt.timedelta(days=1)) == {
        "users master": 1
    }
    assert dropped_at_ingest(warehouse, ["support_tickets"], day - dt.timedelta(days=1)) == {}


def test_state_quarantine_lists_file_row_and_reason(
    warehouse: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SPOKESYNC_HOME", str(warehouse.parent))
    monkeypatch.setenv("SPOKESYNC_ENV", "test")
    assert main(["state", "quarantine", "--source", "users"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "| source | partition | row and reason |",
        "|---|---|---|",
        "| users | master | master/users.csv line 3: field 'user_id' is required but empty |",
    ]
    assert main(["state", "quarantine", "--source", "users", "--superseded"]) == 0
    out = capsys.readouterr().out
    assert out.count("| users | master |") == 2 and "superseded by another row" in out
    assert main(["state", "quarantine", "--date", DAY]) == 0
    out = capsys.readouterr().out
    assert "| support_tickets | 2026-01-05 |" in out and "users" not in out
    assert main(["state", "quarantine", "--limit", "1"]) == 0
    assert "(1 of 2 shown; --limit N for more)" in capsys.readouterr().out
