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
