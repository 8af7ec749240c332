"""``spokesync state`` lists dead letters (emails masked), marks replays, shows plans."""

from __future__ import annotations

from pathlib import Path

import pytest

from spokesync.changes import DeadLetter
from spokesync.cli import main
from spokesync.settings import Settings
from spokesync.state import StateStore


def test_dead_letters_list_and_mark_only_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SPOKESYNC_ENV", raising=False)
    db = Settings.from_env({}, home=tmp_path).state_db
    store = StateStore(db)
    store.record_dead_letters(
        [
            DeadLetter(
                "contacts",
                "jane.doe@example.com",
                {"id": "jane.doe@example.com", "properties": {"lifecyclestage": "x"}},
                "VALIDATION_ERROR",
                "x was not one of the allowed options",
                "corr",
                1,
            )
        ],
        "run-1",
    )
    assert main(["state", "--home", str(tmp_path), "dead-letters"]) == 0
    out = capsys.readouterr().out
    assert "jane.doe@example.com" not in out and "VALIDATION_ERROR" in out
    assert out.count("| contacts |") == 1
    args = ["state", "--home", str(tmp_path), "replay", "--object", "contacts", "--mark-only"]
    assert main(args) == 0
    assert "marked 1 dead letters replayed" in capsys.readouterr().out
    assert store.open_dead_letters("contacts") == []
    assert main(["state", "--home", str(tmp_path), "dead-letters", "--state", "replayed"]) == 0
    assert capsys.readouterr().out.count("| replayed |") == 1


def test_missing_store_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["state", "--home", str(tmp_path), "runs"]) == 1
    assert "no state store at" in capsys.readouterr().out


def test_runs_snapshot_and_plan_views(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import datetime as dt

    import pyarrow as pa

    from spokesync.changes import ConfirmedWrite

    monkeypatch.delenv("SPOKESYNC_ENV", raising=False)
    store = StateStore(Settings.from_env({}, home=tmp_path).state_db)
    day = dt.date(2026, 1, 2)
    store.start_run("run-7", "companies", "v1", shadow=True, as_of=day)
    store.finish_run("run-7", "companies", "success", {"records_changed": 1})
    store.record_confirmed(
        [ConfirmedWrite("companies", "A1", "11", {"name": "Acme", "domain": "a.com"}, day, True)],
        "run-6",
    )
    rows = pa.table(
        {
            "object_type": ["companies"],
            "external_id": ["A1"],
            "hubspot_id": ["11"],
            "property": ["name"],
            "old_value": ["Acme"],
            "new_value": ["Acme Inc"],
            "kind": ["update"],
            "as_of": [day],
        }
    )
    assert store.record_planned_changes("run-7", "companies", rows) == 1
    home = ["state", "--home", str(tmp_path)]
    assert main([*home, "runs"]) == 0
    out = capsys.readouterr().out
    assert "| run-7 | companies | v1 | True | 2026-01-02 | success |" in out
    assert '"records_changed": 1' in out
    assert main([*home, "snapshot"]) == 0
    assert "| companies | pushed | 1 | 2 |" in capsys.readouterr().out
    assert main([*home, "plan"]) == 0
    assert "| run-7 | companies | A1 | name | Acme | Acme Inc | update |" in capsys.readouterr().out
