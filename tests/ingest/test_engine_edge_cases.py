"""Unreadable files, truncated lines, malformed rows, drift, re-runs and cross-chunk duplicates."""

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spokesync.ingest import IngestError, ingest_partition
from spokesync.ingest.contract import SOURCES
from spokesync.warehouse import partition_path, quarantine_path

DAY = "2026-01-05"


def _ticket(i: int, **over: object) -> dict[str, object]:
    rec = {
        "ticket_id": f"TCK-{i}",
        "account_id": "ACC-000001",
        "requester_email": f"ada{i}@acme.com",
        "subject": "Help",
        "description": "Please",
        "priority": "low",
        "status": "new",
        "channel": "email",
        "created_at": "2026-01-05T10:00:00Z",
        "updated_at": "2026-01-05T11:00:00Z",
    }
    return {**rec, **over}


def _write_tickets(landing: Path, lines: list[str]) -> Path:
    path = landing / "support" / "tickets" / f"tickets_{DAY}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _invoice_rows(n: int, drop: str | None = None) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "invoice_id": [f"INV-{i}" for i in range(n)],
            "account_id": ["ACC-000001"] * n,
            "subscription_id": ["SUB-000001"] * n,
            "invoice_date": [DAY] * n,
            "due_date": ["2026-02-04"] * n,
            "amount": ["10.50"] * n,
            "currency": ["EUR"] * n,
            "status": ["paid"] * n,
            "paid_at": ["2026-01-05T12:00:00Z"] * n,
        }
    )
    return frame.drop(columns=[drop]) if drop else frame


def _write_invoices(landing: Path, text: str) -> Path:
    path = landing / "erp" / "invoices" / f"invoices_{DAY}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _quarantine(warehouse: Path, source: str, run_id: str) -> pd.DataFrame:
    return pd.read_parquet(quarantine_path(warehouse, source, DAY, run_id))


def test_truncated_jsonl_line_is_quarantined_with_its_parse_error_and_the_rest_loads(
    tmp_path: Path,
) -> None:
    good = [json.dumps(_ticket(i)) for i in range(3)]
    cut = json.dumps(_ticket(9))[:40]
    _write_tickets(tmp_path / "in", [*good, cut])
    report = ingest_partition("support_tickets", DAY, tmp_path / "in", tmp_path / "wh", "r1")
    assert (report.rows_read, report.rows_valid, report.rows_quarantined) == (4, 3, 1)
    q = _quarantine(tmp_path / "wh", "support_tickets", "r1")
    assert q["row_number"].tolist() == [4]
    assert q["raw_row"].tolist() == [cut]
    (failure,) = json.loads(q["failed_checks"].iat[0])
    assert failure["check"] == "parse_json" and "invalid JSON" in failure["failure_case"]
    assert q["error"].iat[0].startswith(f"support/tickets/tickets_{DAY}.jsonl line 4:")
    loaded = pd.read_parquet(partition_path(tmp_path / "wh", "support_tickets", DAY))
    assert loaded["ticket_id"].tolist() == ["TCK-0", "TCK-1", "TCK-2"]


def test_a_big_jsonl_file_cut_off_mid_escape_is_quarantined_not_a_failed_ingest(
    tmp_path: Path,
) -> None:
    """Found at 1M accounts: DuckDB's reader had already streamed a first batch when it met
    the cut line, so its error came as pyarrow's OSError, which the fast path did not hand
    to the line-by-line path: the whole partition failed instead of quarantining one line."""
    n = 6000  # ~2 MB: more than the reader's first batch
    good = [json.dumps(_ticket(i, description="caf\u00e9 " * 10)) for i in range(n)]
    cut = json.dumps(_ticket(n, subject="API \u2014 429s"))  # the dash written as \u2014
    cut = cut[: cut.index("\\u2014") + 4]  # the file ends inside that escape: \u20
    _write_tickets(tmp_path / "in", [*good, cut])
    report = ingest_partition("support_tickets", DAY, tmp_path / "in", tmp_path / "wh", "r1")
    assert (report.rows_read, report.rows_valid, report.rows_quarantined) == (n + 1, n, 1)
    q = _quarantine(tmp_path / "wh", "support_tickets", "r1")
    assert q["row_number"].tolist() == [n + 1] and q["raw_row"].tolist() == [cut]
    (failure,) = json.loads(q["failed_checks"].iat[0])
    assert failure["check"] == "parse_json"
    loaded = pd.read_parquet(partition_path(tmp_path / "wh", "support_tickets", DAY))
    assert len(loaded) == n and loaded["ticket_id"].iat[-1] == f"TCK-{n - 1}"


def test_unreadable_parquet_fails_the_partition_naming_the_file_and_writes_nothing(
    tmp_path: Path,
) -> None:
    landing, warehouse = tmp_path / "in", tmp_path / "wh"
    part = landing / "product_usage" / f"date={DAY}" / "part-0000.parquet"
    part.parent.mkdir(parents=True)
    schema = SOURCES["product_usage"].arrow_schema()
    when = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)
    rows = [
        {"event_id": "E1", "account_id": "ACC-1", "user_id": "USR-1", "event_type": "login",
         "occurred_at": when, "quantity": 1},
        {"event_id": "E2", "account_id": "ACC-1", "user_id": "USR-1", "event_type": "nope",
         "occurred_at": when, "quantity": 1},
    ]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), part)
    first = ingest_partition("product_usage", DAY, landing, warehouse, "r1")
    assert (first.rows_valid, first.rows_quarantined) == (1, 1)
    before = partition_path(warehouse, "product_usage", DAY).read_bytes()
    q_before = quarantine_path(warehouse, "product_usage", DAY, "r1").read_bytes()

    (part.parent / "part-0001.parquet").write_bytes(b"PAR1 this is not parquet at all")
    with pytest.raises(IngestError) as err:
        ingest_partition("product_usage", DAY, landing, warehouse, "r2")
    assert f"product_usage/date={DAY}/part-0001.parquet" in str(err.value)
    assert "nothing was written" in str(err.value)
    assert partition_path(warehouse, "product_usage", DAY).read_bytes() == before
    assert quarantine_path(warehouse, "product_usage", DAY, "r1").read_bytes() == q_before
    assert not quarantine_path(warehouse, "product_usage", DAY, "r2").exists()
    leftovers = [p for p in warehouse.rglob("*") if p.is_file() and ".tmp" in p.name]
    assert leftovers == []


def test_csv_that_is_not_text_fails_naming_the_file(tmp_path: Path) -> None:
    path = _write_invoices(tmp_path / "in", "")
    path.write_bytes(b"\xff\xfe\x00\x01invoice_id\n\x00\x00")
    with pytest.raises(IngestError, match=f"erp/invoices/invoices_{DAY}.csv"):
        ingest_partition("invoices", DAY, tmp_path / "in", tmp_path / "wh", "r1")


def test_no_landing_files_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="no landing files for invoices on 2026-01-05"):
        ingest_partition("invoices", DAY, tmp_path, tmp_path / "wh", "r1")


def test_malformed_csv_line_is_quarantined_and_later_line_numbers_stay_right(
    tmp_path: Path,
) -> None:
    frame = _invoice_rows(5)
    frame.loc[3, "currency"] = "XYZ"  # line 5
    text = frame.to_csv(index=False)
    lines = text.splitlines()
    lines.insert(2, "INV-x,ACC-000001,too,many,fields,here,1,2,3,4,5")  # becomes line 3
    _write_invoices(tmp_path / "in", "\n".join(lines) + "\n")
    report = ingest_partition("invoices", DAY, tmp_path / "in", tmp_path / "wh", "r1")
    assert (report.rows_read, report.rows_valid, report.rows_quarantined) == (6, 4, 2)
    q = _quarantine(tmp_path / "wh", "invoices", "r1").sort_values("row_number")
    assert q["row_number"].tolist() == [3, 6]
    checks = [json.loads(c)[0]["check"] for c in q["failed_checks"]]
    assert checks == ["parse_csv", "isin"]


def test_missing_optional_column_loads_nulls_and_reports_drift(tmp_path: Path) -> None:
    _write_invoices(tmp_path / "in", _invoice_rows(3, drop="paid_at").to_csv(index=False))
    report = ingest_partition("invoices", DAY, tmp_path / "in", tmp_path / "wh", "r1")
    assert (report.rows_valid, report.rows_quarantined) == (3, 0)
    assert report.columns_missing == ["paid_at"] and report.columns_added == []
    loaded = pq.read_table(partition_path(tmp_path / "wh", "invoices", DAY))
    assert loaded.schema == SOURCES["invoices"].arrow_schema()
    assert loaded.column("paid_at").null_count == 3


def test_missing_required_column_quarantines_every_row(tmp_path: Path) -> None:
    _write_invoices(tmp_path / "in", _invoice_rows(3, drop="currency").to_csv(index=False))
    report = ingest_partition("invoices", DAY, tmp_path / "in", tmp_path / "wh", "r1")
    assert (report.rows_valid, report.rows_quarantined) == (0, 3)
    assert report.columns_missing == ["currency"]
    assert report.failed_checks == {"currency:column_in_dataframe": 3}
    assert pq.read_metadata(partition_path(tmp_path / "wh", "invoices", DAY)).num_rows == 0


def test_extra_column_is_kept_out_of_the_warehouse(tmp_path: Path) -> None:
    frame = _invoice_rows(2)
    frame["internal_note"] = "x"
    _write_invoices(tmp_path / "in", frame.to_csv(index=False))
    report = ingest_partition("invoices", DAY, tmp_path / "in", tmp_path / "wh", "r1")
    assert report.columns_added == ["internal_note"] and report.rows_valid == 2
    names = pq.read_schema(partition_path(tmp_path / "wh", "invoices", DAY)).names
    assert names == SOURCES["invoices"].column_names


def test_rerun_replaces_the_partition_and_its_quarantine(tmp_path: Path) -> None:
    frame = _invoice_rows(4)
    frame.loc[1, "amount"] = "-5"
    _write_invoices(tmp_path / "in", frame.to_csv(index=False))
    ingest_partition("invoices", DAY, tmp_path / "in", tmp_path / "wh", "r1")
    second = ingest_partition("invoices", DAY, tmp_path / "in", tmp_path / "wh", "r2")
    assert (second.rows_valid, second.rows_quarantined) == (3, 1)
    folder = quarantine_path(tmp_path / "wh", "invoices", DAY, "r2").parent
    assert sorted(p.name for p in folder.iterdir()) == ["r2.parquet"]
    assert pq.read_metadata(partition_path(tmp_path / "wh", "invoices", DAY)).num_rows == 3

    frame.loc[1, "amount"] = "5"  # fixed at the source: the re-run clears the quarantine
    _write_invoices(tmp_path / "in", frame.to_csv(index=False))
    third = ingest_partition("invoices", DAY, tmp_path / "in", tmp_path / "wh", "r3")
    assert (third.rows_valid, third.rows_quarantined) == (4, 0)
    assert list(folder.iterdir()) == []


def test_duplicate_keys_across_chunks_keep_the_first_valid_row(tmp_path: Path) -> None:
    landing = tmp_path / "in"
    part = landing / "product_usage" / f"date={DAY}" / "part-0000.parquet"
    part.parent.mkdir(parents=True)
    when = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)
    ids = [f"E{i}" for i in range(250)] + ["E7", "E120", "E249"]
    types = ["login"] * 253
    types[5] = "bogus"  # E5 invalid: a later valid E5 would be kept
    ids.append("E5")
    types.append("login")
    table = pa.table(
        {
            "event_id": ids,
            "account_id": ["ACC-1"] * len(ids),
            "user_id": ["USR-1"] * len(ids),
            "event_type": types,
            "occurred_at": pa.array([when] * len(ids), pa.timestamp("us", "UTC")),
            "quantity": pa.array([1] * len(ids), pa.int64()),
        }
    )
    pq.write_table(table, part)
    report = ingest_partition("product_usage", DAY, landing, tmp_path / "wh", "r1", chunk_rows=100)
    assert (report.rows_read, report.rows_valid, report.rows_quarantined) == (254, 250, 4)
    assert report.failed_checks == {"event_id:superseded": 3, "event_type:isin": 1}
    q = _quarantine(tmp_path / "wh", "product_usage", "r1")
    assert sorted(q["row_number"].tolist()) == [5, 250, 251, 252]
    loaded = pd.read_parquet(partition_path(tmp_path / "wh", "product_usage", DAY))
    assert loaded["event_id"].is_unique and len(loaded) == 250


def test_streamed_csv_keeps_exact_line_numbers_across_blocks_and_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spokesync.ingest import readers

    monkeypatch.setattr(readers, "CSV_BLOCK_BYTES", 256)  # many small blocks
    frame = _invoice_rows(40)
    for i in (7, 23, 38):
        frame.loc[i, "status"] = "refunded"
    lines = frame.to_csv(index=False).splitlines()
    lines.insert(12, "broken,line")  # line 13
    lines.insert(30, "another,broken,line")  # line 31
    _write_invoices(tmp_path / "in", "\n".join(lines) + "\n")
    report = ingest_partition("invoices", DAY, tmp_path / "in", tmp_path / "wh", "r1", chunk_rows=5)
    assert (report.rows_read, report.rows_valid, report.rows_quarantined) == (42, 37, 5)
    q = _quarantine(tmp_path / "wh", "invoices", "r1").sort_values("row_number")
    # data row i sits on line i + 2, plus one for each broken line inserted above it
    assert q["row_number"].tolist() == [7 + 2, 13, 23 + 3, 31, 38 + 4]
    for number, raw in zip(q["row_number"], q["raw_row"], strict=True):
        text = lines[number - 1]  # the quarantined row is really on that line of the file
        if number in (13, 31):
            assert raw == text
        else:
            assert json.loads(raw)["invoice_id"] == text.split(",")[0]
