"""The Parquet fast path on pyarrow.compute (spokesync.ingest.arrow_checks) against the DuckDB
scan query and the streaming readers: on files with odd values — Unicode whitespace of every
kind around and inside ids, blanks, nulls, combining marks, NUL bytes, case and padding in the
event type, timestamps on the day's edges and in other zones, quantities at the int64 edges,
duplicated keys within a batch, across batches and across files, extra columns — all three
keep the same rows in the same order, quarantine the same rows with the same failures and
sentences, and supersede the same duplicates."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spokesync.ingest import arrow_checks, engine, ingest_partition
from spokesync.ingest.lexicon import UNICODE_WHITESPACE
from spokesync.ingest.report import IngestReport
from spokesync.ingest.scan import Refused
from spokesync.warehouse import connect, partition_path
from tests.ingest.landing import DAY

UTC = dt.UTC
START = dt.datetime(2026, 1, 5, tzinfo=UTC)
US = pa.timestamp("us", tz="UTC")
I64 = pa.int64()
FOLDER = f"product_usage/date={DAY}"


def _usage(rows: list[tuple], ts: pa.DataType = US, qty: pa.DataType = I64) -> pa.Table:
    """Rows of (event_id, account_id, user_id, event_type, occurred_at, quantity)."""
    cols = list(zip(*rows, strict=True)) if rows else [[]] * 6
    return pa.table(
        {
            "event_id": pa.array(cols[0], pa.string()),
            "account_id": pa.array(cols[1], pa.string()),
            "user_id": pa.array(cols[2], pa.string()),
            "event_type": pa.array(cols[3], pa.string()),
            "occurred_at": pa.array(cols[4], US).cast(ts),
            "quantity": pa.array(cols[5], pa.int64()).cast(qty),
        }
    )


def _ok(eid: str, **over: object) -> tuple:
    row = {
        "event_id": eid,
        "account_id": "ACC-1",
        "user_id": "USR-1",
        "event_type": "login",
        "occurred_at": START + dt.timedelta(hours=9),
        "quantity": 1,
    }
    row.update(over)
    return tuple(row.values())


ODD = [
    _ok("E1"),
    _ok(" E2\u00a0"),  # trimmed: normalised
    _ok("\u3000E3\u200b\ufeff"),  # ideographic space, zero-width space, BOM
    _ok("E 4"),  # inner space: kept
    _ok("\u0085\tE5\n"),
    _ok(" \u0301E6"),  # a combining mark after a space: the space goes, the mark stays
    _ok("\u200b"),  # blank: only a zero-width space
    _ok(""),  # blank
    _ok(None),  # not_nullable
    _ok("E7", account_id="   "),
    _ok("E8", user_id=None),
    _ok("E9", event_type="logout"),
    _ok("E10", event_type=" login"),  # not trimmed: not in the list
    _ok("E11", event_type="LOGIN"),
    _ok("E12", event_type="\u3000"),  # blank
    _ok("E13", event_type=None),
    _ok("E14", event_type=""),
    _ok("E15", event_type="login\x00"),
    _ok("E16", occurred_at=START),  # the day's first microsecond
    _ok("E17", occurred_at=START + dt.timedelta(days=1) - dt.timedelta(microseconds=1)),
    _ok("E18", occurred_at=START + dt.timedelta(days=1)),  # next day: in_range
    _ok("E19", occurred_at=START - dt.timedelta(microseconds=1)),
    _ok("E20", occurred_at=None),
    _ok("E21", occurred_at=dt.datetime(1970, 1, 1, tzinfo=UTC)),
    _ok("E22", quantity=0),
    _ok("E23", quantity=-(2**63)),
    _ok("E24", quantity=2**63 - 1),
    _ok("E25", quantity=None),
    _ok("E26", event_type="logout", quantity=0, occurred_at=None),  # three failures
    _ok("E1", quantity=5),  # a duplicate: the first row wins
    _ok(" E1 ", quantity=6),  # the same key once trimmed
    _ok("E27", event_type="nope"),  # fails: does not use up its key
    _ok("E27", quantity=7),  # … so this one is kept
    _ok("\u00e9v\u00e9nement-\U0001f600"),
    _ok("E28", account_id="ACC-1; DROP TABLE x; --", user_id="'\"\\"),
]


def _land(landing: Path, tables: list[pa.Table]) -> None:
    folder = landing / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for i, t in enumerate(tables):
        pq.write_table(t, folder / f"part-{i:04d}.parquet")


def _run(
    landing: Path, wh: Path, path: str, monkeypatch: pytest.MonkeyPatch, chunk_rows: int = 4
) -> tuple[IngestReport, list[dict], list[tuple]]:
    """Ingest through ``path`` (``arrow``, ``duckdb`` or ``streaming``), asserting it was the
    path taken; returns the report, the warehouse rows in file order and the quarantine."""
    calls: list[str] = []
    with monkeypatch.context() as m:
        real_check = arrow_checks.check

        def spy(plan: arrow_checks.Plan, batch: pa.RecordBatch) -> arrow_checks.Checked:
            calls.append("arrow")
            return real_check(plan, batch)

        m.setattr(arrow_checks, "check", spy)
        if path != "arrow":
            m.setattr(arrow_checks, "plan_for", lambda *a: None)
        if path == "streaming":

            def refuse(*a: object, **k: object) -> None:
                raise Refused("forced for the test")

            m.setattr(engine, "scan", refuse)
        report = ingest_partition("product_usage", DAY, landing, wh, "r1", chunk_rows=chunk_rows)
    assert ("arrow" in calls) == (path == "arrow")
    loaded = pq.read_table(partition_path(wh, "product_usage", DAY)).to_pylist()
    quarantine = (
        connect(wh)
        .execute(
            "SELECT file, row_number, raw_row, failed_checks, error FROM quarantine "
            "ORDER BY file, row_number, failed_checks"
        )
        .fetchall()
    )
    return report, loaded, quarantine


def _report(r: IngestReport) -> tuple:
    return (
        r.rows_read, r.rows_valid, r.rows_quarantined, r.rows_superseded, r.rows_normalised,
        r.failed_checks, r.columns_added, r.columns_missing,
    )  # fmt: skip


def _agree(landing: Path, out: Path, monkeypatch: pytest.MonkeyPatch, chunk_rows: int = 4):
    results = {
        p: _run(landing, out / p, p, monkeypatch, chunk_rows)
        for p in ("arrow", "duckdb", "streaming")
    }
    a, d, s = results["arrow"], results["duckdb"], results["streaming"]
    assert _report(a[0]) == _report(d[0]) == _report(s[0])
    assert a[1] == d[1] == s[1]
    assert a[2] == d[2]
    # The streaming readers show a superseded row as landed, the fast paths as loaded (it
    # passed every check; see docs/ingestion.md): every other column is the same.
    assert [q[:2] + q[3:] for q in a[2]] == [q[:2] + q[3:] for q in s[2]]
    assert [q for q in a[2] if "superseded" not in q[3]] == [
        q for q in s[2] if "superseded" not in q[3]
    ]
    return a


def test_odd_values_give_the_same_outcome_on_every_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _land(tmp_path / "in", [_usage(ODD)])
    report, loaded, quarantine = _agree(tmp_path / "in", tmp_path / "out", monkeypatch)
    # By hand: 35 rows; 12 kept, 21 fail a check, E1's two later rows are superseded.
    assert (report.rows_read, report.rows_valid, report.rows_quarantined) == (35, 12, 23)
    assert report.rows_superseded == 2
    assert report.rows_normalised == 7  # rows 1, 2, 4, 5, 6 (E1-E6 ids), 9 (account), 30
    assert report.failed_checks == {
        "account_id:blank": 1,
        "event_id:blank": 2,
        "event_id:not_nullable": 1,
        "event_id:superseded": 2,
        "event_type:blank": 2,
        "event_type:isin": 6,
        "event_type:not_nullable": 1,
        "occurred_at:in_range": 3,
        "occurred_at:not_nullable": 2,
        "quantity:greater_than_or_equal_to": 3,
        "quantity:not_nullable": 1,
        "user_id:not_nullable": 1,
    }
    assert [r["event_id"] for r in loaded] == [
        "E1", "E2", "E3", "E 4", "E5", "\u0301E6", "E16", "E17", "E24", "E27",
        "\u00e9v\u00e9nement-\U0001f600", "E28",
    ]  # fmt: skip
    assert loaded[-3]["quantity"] == 7  # E27's second row: the failing first did not count
    assert [q[1] for q in quarantine] == [
        6,
        7,
        8,
        9,
        10,
        11,
        12,
        13,
        14,
        15,
        16,
        17,
        20,
        21,
        22,
        23,
        24,
        25,
        27,
        28,
        29,
        30,
        31,
    ]
    by_row = {q[1]: q for q in quarantine}
    file = f"{FOLDER}/part-0000.parquet"
    assert by_row[28][3] == (
        '[{"column":"event_type","check":"isin","failure_case":"logout"},'
        '{"column":"occurred_at","check":"not_nullable","failure_case":null},'
        '{"column":"quantity","check":"greater_than_or_equal_to","failure_case":"0"}]'
    )
    assert by_row[28][4] == (
        f"{file} row 28: field 'event_type' failed isin: 'logout'; field 'occurred_at' is "
        "required but empty; field 'quantity' failed greater_than_or_equal_to: '0'"
    )
    assert by_row[20][4] == (
        f"{file} row 20: field 'occurred_at' failed in_range: '2026-01-06 00:00:00+00'"
    )
    assert by_row[6][3] == '[{"column":"event_id","check":"blank","failure_case":"\u200b"}]'
    assert by_row[30][3] == '[{"column":"event_id","check":"superseded","failure_case":"E1"}]'


def test_files_of_other_zones_widths_and_extra_columns_agree_across_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second part in milliseconds at +05:30 with int32 quantities and extra columns; keys
    repeated across the parts (the first file's row wins)."""
    first = _usage([_ok("E1"), _ok("E2"), _ok("E3", quantity=0)])
    second = _usage(
        [
            _ok("E2", quantity=9),  # superseded by the first file's E2
            _ok("E3"),  # kept: the first file's E3 failed
            _ok("E4", occurred_at=START + dt.timedelta(days=1)),
            _ok(" E5 ", occurred_at=START + dt.timedelta(hours=23, minutes=59)),
        ],
        ts=pa.timestamp("ms", tz="+05:30"),
        qty=pa.int32(),
    )
    second = second.append_column("client_version", pa.array(["4.2.1", None, "x", ""]))
    second = second.append_column("score", pa.array([1.5, None, float("nan"), -0.0]))
    second = second.append_column("flag", pa.array([True, False, None, True]))
    _land(tmp_path / "in", [first, second])
    report, loaded, quarantine = _agree(tmp_path / "in", tmp_path / "out", monkeypatch, 2)
    assert (report.rows_read, report.rows_valid, report.rows_superseded) == (7, 4, 1)
    assert report.columns_added == ["client_version", "flag", "score"]
    assert [(r["event_id"], r["quantity"]) for r in loaded] == [
        ("E1", 1), ("E2", 1), ("E3", 1), ("E5", 1)
    ]  # fmt: skip
    assert loaded[3]["occurred_at"] == START + dt.timedelta(hours=23, minutes=59)
    assert [(q[0][-12:], q[1]) for q in quarantine] == [
        ("0000.parquet", 2), ("0001.parquet", 0), ("0001.parquet", 2)
    ]  # fmt: skip
    assert '"client_version":"x"' in quarantine[2][2]


@pytest.mark.parametrize(
    ("change", "applies"),
    [
        (lambda t: t, True),
        (lambda t: t.append_column("extra", pa.array(["a"])), True),
        (
            lambda t: t.set_column(4, "occurred_at", t.column(4).cast(pa.timestamp("ns", "UTC"))),
            False,
        ),
        (lambda t: t.set_column(4, "occurred_at", t.column(4).cast(pa.timestamp("us"))), False),
        (lambda t: t.set_column(4, "occurred_at", pa.array(["2026-01-05T09:00:00Z"])), False),
        (lambda t: t.set_column(5, "quantity", pa.array(["1"])), False),
        (lambda t: t.set_column(5, "quantity", t.column(5).cast(pa.uint64())), False),
        (lambda t: t.set_column(3, "event_type", t.column(3).dictionary_encode()), False),
        (lambda t: t.set_column(0, "event_id", t.column(0).cast(pa.large_string())), True),
        (lambda t: t.drop_columns(["quantity"]), False),
        (lambda t: t.append_column("extra", pa.array([[1]])), False),
        (lambda t: t.append_column("__h", pa.array([1])), False),
    ],
)
def test_which_files_the_kernels_check(change: object, applies: bool) -> None:
    """The kernels check what they reproduce exactly; every other file goes to the SQL."""
    table = change(_usage([_ok("E1")]))  # type: ignore[operator]
    assert (arrow_checks.plan_for("product_usage", table.schema, DAY) is not None) is applies


def test_other_sources_are_never_checked_by_the_kernels() -> None:
    schema = pa.schema([("subscription_id", pa.string())])
    assert arrow_checks.plan_for("subscriptions", schema, DAY) is None


def test_a_file_the_kernels_skip_still_loads_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partition whose parts differ: one the kernels check, one (naive timestamps) the SQL
    checks; the outcome equals the DuckDB-only and streaming runs."""
    naive = _usage([_ok("E2"), _ok("E1", quantity=3)], ts=pa.timestamp("us"))
    _land(tmp_path / "in", [_usage(ODD[:12]), naive])
    report, loaded, _ = _agree(tmp_path / "in", tmp_path / "out", monkeypatch)
    assert (report.rows_read, report.rows_superseded) == (14, 2)  # E2 and E1 again


WS = sorted(set(UNICODE_WHITESPACE)) + ["\u0301", "\u180e", "\x00", "x", "E"]
ids = st.one_of(
    st.none(),
    st.text(st.sampled_from(WS), max_size=3),
    st.builds(lambda a, k, b: a + k + b, st.text(st.sampled_from(WS), max_size=2),
              st.sampled_from(["E1", "E2", "E 3"]), st.text(st.sampled_from(WS), max_size=2)),
    st.text(max_size=6),
)  # fmt: skip
kinds = st.one_of(
    st.none(),
    st.sampled_from(["login", "feature_used", "api_call", "logout", " login", "Login", ""]),
    st.text(max_size=4),
)
stamps = st.one_of(
    st.none(),
    st.datetimes(
        min_value=dt.datetime(2026, 1, 4, 23),
        max_value=dt.datetime(2026, 1, 6, 1),
        timezones=st.just(UTC),
    ),
    st.sampled_from([START, START + dt.timedelta(days=1), START - dt.timedelta(microseconds=1)]),
)
quantities = st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
                       st.integers(min_value=-1, max_value=2))  # fmt: skip
rows = st.lists(st.tuples(ids, ids, ids, kinds, stamps, quantities), min_size=1, max_size=10)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(rows, min_size=1, max_size=2), st.integers(min_value=1, max_value=4))
def test_property_the_kernels_and_the_sql_agree(
    monkeypatch: pytest.MonkeyPatch, parts: list[list[tuple]], chunk_rows: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _land(Path(tmp) / "in", [_usage(p) for p in parts])
        _agree(Path(tmp) / "in", Path(tmp) / "out", monkeypatch, chunk_rows)
