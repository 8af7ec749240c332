"""The fast path (DuckDB reads and checks each file in one query) against the streaming readers.

Every other ingest test runs whichever path a file takes; these check that clean files do
take the fast path, that files it cannot reproduce exactly are handed to the streaming readers,
and that both paths load and quarantine the same rows with the same reasons.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from spokesync.ingest import engine
from spokesync.ingest import scan as scan_module
from spokesync.ingest.contract import SOURCES
from spokesync.ingest.scan import Refused
from spokesync.warehouse import connect
from tests.ingest.landing import DAY, ingest, land, row


def _mixed_rows(source: str) -> list[dict[str, str | None]]:
    """Valid rows, rows failing each kind of check, and a duplicated key (newest wins)."""
    spec = SOURCES[source]
    rows = [row(source, i) for i in range(1, 6)]
    text = [c.name for c in spec.columns if c.kind == "str" and not c.nullable]
    rows[1][text[-1]] = "   "  # blank
    rows[2][spec.key] = None  # not_nullable
    enum = next((c.name for c in spec.columns if c.allowed), None)
    if enum:
        rows[3][enum] = "nope"  # isin
    dup = dict(rows[0])
    if spec.updated_at:
        dup[spec.updated_at] = "2026-01-05T12:00:00Z"  # newer: this one wins
    rows.append(dup)
    return rows


def _no_streaming(self: object, chunk_rows: int) -> None:
    raise AssertionError("the streaming readers were used")


def _refuse(*args: object, **kwargs: object) -> None:
    raise Refused("forced for the test")


def _outcome(wh: Path, source: str) -> tuple[list[tuple], list[tuple]]:
    con = connect(wh)
    loaded = con.execute(f'SELECT * FROM "{source}" ORDER BY 1').fetchall()
    quarantine = con.execute(
        "SELECT file, row_number, failed_checks, error, raw_row FROM quarantine "
        "ORDER BY row_number, failed_checks"
    ).fetchall()
    return loaded, quarantine


@pytest.mark.parametrize("source", ["subscriptions", "support_tickets", "product_usage", "users"])
def test_clean_files_take_the_fast_path_and_agree_with_the_streaming_readers(
    tmp_path: Path, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _mixed_rows(source)
    land(tmp_path / "in", source, rows)
    with monkeypatch.context() as m:
        m.setattr(engine._Run, "read_files", _no_streaming)
        fast = ingest(tmp_path / "in", tmp_path / "fast", source)
    with monkeypatch.context() as m:
        m.setattr(engine, "scan", _refuse)
        slow = ingest(tmp_path / "in", tmp_path / "slow", source)
    assert fast.rows_read == slow.rows_read == 6
    counts = (fast.rows_valid, fast.rows_quarantined, fast.rows_superseded)
    assert counts == (slow.rows_valid, slow.rows_quarantined, slow.rows_superseded)
    assert fast.failed_checks == slow.failed_checks
    assert fast.rows_normalised == slow.rows_normalised
    assert fast.columns_added == slow.columns_added
    assert fast.columns_missing == slow.columns_missing
    f_loaded, f_q = _outcome(tmp_path / "fast", source)
    s_loaded, s_q = _outcome(tmp_path / "slow", source)
    assert f_loaded == s_loaded
    assert len(f_loaded) == fast.rows_valid
    # Same rows, checks and sentences; raw_row is the landed row for failing rows on both
    # paths (a superseded row passed every check: the fast path shows it as loaded).
    assert [q[:4] for q in f_q] == [q[:4] for q in s_q]
    for f, s in zip(f_q, s_q, strict=True):
        if "superseded" not in f[2]:
            assert json.loads(f[4]) == json.loads(s[4])
    key = SOURCES[source].key
    if SOURCES[source].updated_at:
        assert fast.failed_checks[f"{key}:superseded"] == 1


def test_the_fast_path_reports_each_failure_exactly(tmp_path: Path) -> None:
    """Hand-written expectations for one failing CSV row of subscriptions (line 3)."""
    rows = [row("subscriptions", 1), row("subscriptions", 2, plan="platinum", seats="0")]
    land(tmp_path / "in", "subscriptions", rows)
    report = ingest(tmp_path / "in", tmp_path / "wh", "subscriptions")
    assert (report.rows_valid, report.rows_quarantined) == (1, 1)
    assert report.failed_checks == {"plan:isin": 1, "seats:greater_than_or_equal_to": 1}
    ((number, checks, error, raw),) = (
        connect(tmp_path / "wh")
        .execute("SELECT row_number, failed_checks, error, raw_row FROM quarantine")
        .fetchall()
    )
    assert number == 3
    assert json.loads(checks) == [
        {"column": "plan", "check": "isin", "failure_case": "platinum"},
        {"column": "seats", "check": "greater_than_or_equal_to", "failure_case": "0"},
    ]
    assert error == (
        f"erp/subscriptions/subscriptions_{DAY}.csv line 3: field 'plan' failed isin: "
        "'platinum'; field 'seats' failed greater_than_or_equal_to: '0'"
    )
    assert json.loads(raw)["seats"] == "0"


@pytest.mark.parametrize(
    ("why", "text"),
    [
        ("a float in a free-text field", '"description": 12.50'),
        ("an object in a free-text field", '"description": {"a": 1}'),
        ("a blank line", None),
    ],
)
def test_jsonl_the_fast_path_cannot_reproduce_goes_to_the_line_reader(
    tmp_path: Path, why: str, text: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [json.dumps(row("support_tickets", i)) for i in range(1, 4)]
    if text is None:
        lines.insert(1, "")
    else:
        lines[1] = lines[1].replace('"description": "Please"', text)
    land(tmp_path / "in", "support_tickets", [], raw="\n".join(lines) + "\n")
    used: list[str] = []
    real = engine._Run.read_files

    def streaming(self: engine._Run, chunk_rows: int) -> None:
        used.append(why)
        real(self, chunk_rows)

    monkeypatch.setattr(engine._Run, "read_files", streaming)
    report = ingest(tmp_path / "in", tmp_path / "wh", "support_tickets")
    assert used == [why]
    assert (report.rows_read, report.rows_valid) == (3, 3)
    got = dict(
        connect(tmp_path / "wh")
        .execute("SELECT ticket_id, description FROM support_tickets")
        .fetchall()
    )
    if text is not None and "12.50" in text:
        assert got["TCK-12"] == "12.50"


BIG = 6000  # rows: the landing file is well past the fast path's first-lines sniff (1 MiB)


@pytest.mark.parametrize(
    ("source", "bad_line"),
    [
        # the export cut off inside a string escape (found at 1M accounts: the ingest stopped)
        ("support_tickets", '{"ticket_id": "TCK-cut", "subject": "Caf\\u00'),
        ("support_tickets", '{"ticket_id": "TCK-cut", "subject": "cut off'),
        ("support_tickets", "not json at all"),
        ("subscriptions", "SUB-cut,ACC-1,extra,fields,,,,,,,,,,,,"),
    ],
)
def test_a_bad_line_deep_in_a_large_file_is_quarantined_not_fatal(
    tmp_path: Path, source: str, bad_line: str
) -> None:
    """DuckDB reports a malformed line found after streaming began through Arrow's reader (an
    ``OSError``, not a ``duckdb.Error``): the file goes to the streaming readers, which
    quarantine that one line and load every other row."""
    rows = [row(source, i) for i in range(1, BIG + 1)]
    path = land(tmp_path / "in", source, rows)
    with path.open("a", encoding="utf-8", newline="") as fh:
        fh.write(bad_line + ("\r\n" if source == "subscriptions" else "\n"))
    report = ingest(tmp_path / "in", tmp_path / "wh", source)
    assert (report.rows_read, report.rows_valid, report.rows_quarantined) == (BIG + 1, BIG, 1)
    con = connect(tmp_path / "wh")
    assert con.execute(f'SELECT count(*) FROM "{source}"').fetchone() == (BIG,)
    bad_number = BIG + (2 if source == "subscriptions" else 1)  # CSV: the header is line 1
    ((number, raw),) = con.execute("SELECT row_number, raw_row FROM quarantine").fetchall()
    assert number == bad_number
    assert bad_line.split(",")[0] in raw


class _FailsAfterOneBatch:
    """The scan connection, but its stream raises OSError after the first batch: how DuckDB's
    error for a bad line deep in a large file (a truncated last line cut inside a ``\\u``
    escape, seen at ~90 MB) reaches Python through Arrow's stream reader."""

    def __init__(self, con: object) -> None:
        self.con = con

    def sql(self, query: str, params: dict[str, object]) -> _FailsAfterOneBatch:
        self.rel = self.con.sql(query, params=params)  # type: ignore[attr-defined]
        return self

    def to_arrow_reader(self, rows: int) -> Iterator[object]:
        batches = iter(self.rel.to_arrow_reader(rows))
        yield next(batches)
        raise OSError("Invalid Input Error: Malformed JSON ... invalid escaped sequence")


def test_an_error_deep_in_a_large_file_hands_it_to_the_line_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [json.dumps(row("support_tickets", i, priority="bad" if i == 42 else "low"))
             for i in range(1, 51)]  # fmt: skip
    land(tmp_path / "in", "support_tickets", [], raw="\n".join(lines) + "\n")
    real = scan_module.connection()
    monkeypatch.setattr(scan_module, "connection", lambda: _FailsAfterOneBatch(real))
    used: list[int] = []
    streaming = engine._Run.read_files

    def spy(self: engine._Run, chunk_rows: int) -> None:
        used.append(chunk_rows)
        streaming(self, chunk_rows)

    monkeypatch.setattr(engine._Run, "read_files", spy)
    report = engine.ingest_partition(
        "support_tickets", DAY, tmp_path / "in", tmp_path / "wh", "r1", chunk_rows=10
    )
    assert used == [10]  # the whole partition again, from a fresh output file
    assert (report.rows_read, report.rows_valid, report.rows_quarantined) == (50, 49, 1)
    assert report.failed_checks == {"priority:isin": 1}
    con = connect(tmp_path / "wh")
    assert con.execute("SELECT row_number FROM quarantine").fetchall() == [(42,)]
    assert con.execute("SELECT count(*) FROM support_tickets").fetchone() == (49,)
