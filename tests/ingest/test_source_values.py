"""Source values: only the contract's null tokens are null, numbers stay exact or are
quarantined with a reason, keys and required texts are judged after Unicode trimming."""

import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from spokesync.ingest import ingest_partition
from spokesync.warehouse import connect
from tests.ingest.landing import ingest, land, row

NULL_LOOKING = ["NA", "N/A", "NULL", "null", "nan", "NaN", "#N/A", "None", "n/a", "-"]


def _loaded(warehouse: Path, source: str, column: str) -> list[object]:
    con = connect(warehouse)
    return [r[0] for r in con.execute(f'SELECT "{column}" FROM {source} ORDER BY 1').fetchall()]


def _quarantined(warehouse: Path) -> list[tuple[int, list[dict[str, object]]]]:
    con = connect(warehouse)
    rows = con.execute("SELECT row_number, failed_checks FROM quarantine ORDER BY 1").fetchall()
    return [(n, json.loads(c)) for n, c in rows]


@pytest.mark.parametrize("token", NULL_LOOKING)
def test_csv_null_looking_text_is_a_value(tmp_path: Path, token: str) -> None:
    land(tmp_path / "in", "users", [row("users", 1, job_title=token)])
    report = ingest(tmp_path / "in", tmp_path / "wh", "users")
    assert (report.rows_valid, report.rows_quarantined) == (1, 0)
    assert _loaded(tmp_path / "wh", "users", "job_title") == [token]


def test_namibia_is_a_country_not_a_missing_value(tmp_path: Path) -> None:
    land(tmp_path / "in", "accounts", [row("accounts", 1, country="NA")])
    report = ingest(tmp_path / "in", tmp_path / "wh", "accounts")
    assert (report.rows_valid, report.rows_quarantined) == (1, 0)
    assert _loaded(tmp_path / "wh", "accounts", "country") == ["NA"]


@pytest.mark.parametrize("token", NULL_LOOKING)
def test_jsonl_null_looking_strings_are_values(tmp_path: Path, token: str) -> None:
    land(tmp_path / "in", "support_tickets", [row("support_tickets", 1, description=token)])
    ingest(tmp_path / "in", tmp_path / "wh", "support_tickets")
    assert _loaded(tmp_path / "wh", "support_tickets", "description") == [token]


def test_parquet_strings_that_look_null_are_values(tmp_path: Path) -> None:
    rows = [row("product_usage", i + 1, user_id=t) for i, t in enumerate(NULL_LOOKING)]
    land(tmp_path / "in", "product_usage", rows)
    report = ingest(tmp_path / "in", tmp_path / "wh", "product_usage")
    assert report.rows_valid == len(NULL_LOOKING)
    assert sorted(_loaded(tmp_path / "wh", "product_usage", "user_id")) == sorted(NULL_LOOKING)


def test_null_tokens_are_configurable_per_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPOKESYNC_NULL_TOKENS_USERS", '["", "N/A"]')
    land(
        tmp_path / "in",
        "users",
        [row("users", 1, job_title="N/A"), row("users", 2, job_title="NA")],
    )
    land(tmp_path / "in", "accounts", [row("accounts", 1, country="N/A")])
    assert ingest(tmp_path / "in", tmp_path / "wh", "users").rows_valid == 2
    assert _loaded(tmp_path / "wh", "users", "job_title") == ["NA", None]
    # Only users: accounts keep the default, so "N/A" is a (bad) country, not an empty one.
    ingest(tmp_path / "in", tmp_path / "wh", "accounts")
    ((_, checks),) = _quarantined(tmp_path / "wh")
    assert checks == [{"column": "country", "check": "str_matches", "failure_case": "N/A"}]


def test_a_bad_null_token_setting_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPOKESYNC_NULL_TOKENS_USERS", "N/A")
    land(tmp_path / "in", "users", [row("users", 1)])
    with pytest.raises(ValueError, match="SPOKESYNC_NULL_TOKENS_USERS must be a JSON list"):
        ingest(tmp_path / "in", tmp_path / "wh", "users")


@pytest.mark.parametrize("value", ["inf", "-inf", "Infinity", "NaN", "nan", "+inf"])
@pytest.mark.parametrize(("source", "column"), [("subscriptions", "mrr"), ("invoices", "amount")])
def test_non_finite_numbers_are_quarantined_not_no_value(
    tmp_path: Path, source: str, column: str, value: str
) -> None:
    land(tmp_path / "in", source, [row(source, 1), row(source, 2, **{column: value})])
    report = ingest(tmp_path / "in", tmp_path / "wh", source)
    assert (report.rows_valid, report.rows_quarantined) == (1, 1)
    assert _quarantined(tmp_path / "wh") == [
        (3, [{"column": column, "check": "not_finite", "failure_case": value}])
    ]


def test_json_nan_and_infinity_literals_are_quarantined(tmp_path: Path) -> None:
    good = json.dumps(row("support_tickets", 1))
    text = good + "\n" + good.replace('"TCK-11"', '"TCK-12"').replace('"Please"', "NaN") + "\n"
    land(tmp_path / "in", "support_tickets", [], raw=text)
    report = ingest(tmp_path / "in", tmp_path / "wh", "support_tickets")
    # A JSON NaN in a text column is the text "NaN": a value, never "no value".
    assert report.rows_valid == 2
    assert _loaded(tmp_path / "wh", "support_tickets", "description") == ["NaN", "Please"]


@pytest.mark.parametrize(
    ("value", "exact"),
    [
        ("12345678901234567890.123456789", Decimal("12345678901234567890.123456789")),
        ("1000000000000000000000", Decimal("1000000000000000000000")),
        ("0.1", Decimal("0.1")),
        (" 75.50 ", Decimal("75.5")),
        ("-0.000000001", Decimal("-0.000000001")),
    ],
)
def test_decimals_keep_their_exact_digits(tmp_path: Path, value: str, exact: Decimal) -> None:
    land(tmp_path / "in", "invoices", [row("invoices", 1, amount=value)])
    report = ingest(tmp_path / "in", tmp_path / "wh", "invoices")
    if exact < 0:
        assert report.rows_quarantined == 1  # amount >= 0: a range failure, not a parse one
        return
    (got,) = _loaded(tmp_path / "wh", "invoices", "amount")
    assert got == exact


@pytest.mark.parametrize(
    ("value", "check"),
    [
        ("1.0000000001", "parse_decimal"),  # 10 decimals: would be rounded
        ("1" * 30, "parse_decimal"),  # 30 integer digits: does not fit
        ("1e3", "parse_decimal"),
        ("12,50", "parse_decimal"),
        ("ten", "parse_decimal"),
    ],
)
def test_decimals_that_cannot_be_held_exactly_are_quarantined(
    tmp_path: Path, value: str, check: str
) -> None:
    land(tmp_path / "in", "invoices", [row("invoices", 1, amount=value)])
    ingest(tmp_path / "in", tmp_path / "wh", "invoices")
    assert _quarantined(tmp_path / "wh") == [
        (2, [{"column": "amount", "check": check, "failure_case": value}])
    ]


@pytest.mark.parametrize(
    ("value", "outcome"),
    [
        ("9007199254740993", 9007199254740993),  # 2**53 + 1: not a double
        ("9223372036854775807", 9223372036854775807),
        ("9223372036854775808", "parse_int"),  # beyond int64
        ("3.0", 3),
        ("3.5", "parse_int"),
        ("inf", "not_finite"),
    ],
)
def test_integers_are_exact_beyond_two_to_the_53(
    tmp_path: Path, value: str, outcome: object
) -> None:
    land(tmp_path / "in", "subscriptions", [row("subscriptions", 1, seats=value)])
    ingest(tmp_path / "in", tmp_path / "wh", "subscriptions")
    if isinstance(outcome, int):
        assert _loaded(tmp_path / "wh", "subscriptions", "seats") == [outcome]
    else:
        assert _quarantined(tmp_path / "wh") == [
            (2, [{"column": "seats", "check": outcome, "failure_case": value}])
        ]


BLANKS = ["", " ", "   ", "\u00a0", "\u3000 \t", "\u200b", "\ufeff\u2003"]


@pytest.mark.parametrize("blank", BLANKS[1:])
@pytest.mark.parametrize(
    ("source", "column"),
    [("support_tickets", "ticket_id"), ("accounts", "name"), ("users", "first_name"),
     ("support_tickets", "subject"), ("invoices", "subscription_id")],
)  # fmt: skip
def test_blank_keys_and_required_texts_are_quarantined_as_blank(
    tmp_path: Path, source: str, column: str, blank: str
) -> None:
    land(tmp_path / "in", source, [row(source, 1), row(source, 2, **{column: blank})])
    report = ingest(tmp_path / "in", tmp_path / "wh", source)
    assert (report.rows_valid, report.rows_quarantined) == (1, 1)
    ((_, checks),) = _quarantined(tmp_path / "wh")
    assert checks == [{"column": column, "check": "blank", "failure_case": blank}]


def test_keys_and_references_are_trimmed_the_same_in_every_table(tmp_path: Path) -> None:
    land(tmp_path / "in", "subscriptions", [row("subscriptions", 0, subscription_id="SUB-1\u00a0")])
    land(tmp_path / "in", "invoices", [row("invoices", 1, subscription_id=" SUB-1")])
    land(tmp_path / "in", "accounts", [row("accounts", 0, account_id="ACC-000001 ")])
    assert ingest(tmp_path / "in", tmp_path / "wh", "subscriptions").rows_normalised == 1
    ingest(tmp_path / "in", tmp_path / "wh", "invoices")
    ingest(tmp_path / "in", tmp_path / "wh", "accounts")
    con = connect(tmp_path / "wh")
    joined = con.execute(
        "SELECT s.subscription_id, i.invoice_id, a.account_id FROM subscriptions s "
        "JOIN invoices i USING (subscription_id) JOIN accounts a ON a.account_id = s.account_id"
    ).fetchall()
    assert joined == [("SUB-1", "INV-11", "ACC-000001")]


def test_text_values_are_kept_exactly_as_landed(tmp_path: Path) -> None:
    name = "  Ünïcödé\u00a0Ltd; DROP TABLE accounts; -- 'x' \"y\"  "
    land(tmp_path / "in", "accounts", [row("accounts", 1, name=name)])
    ingest(tmp_path / "in", tmp_path / "wh", "accounts")
    assert _loaded(tmp_path / "wh", "accounts", "name") == [name]
    assert pd.read_parquet(tmp_path / "wh" / "accounts" / "data.parquet")["name"].tolist() == [name]


def test_the_newest_row_of_a_key_wins_and_the_others_are_superseded(tmp_path: Path) -> None:
    """Within a chunk and across chunks, in any order: newest updated_at wins, ties → first."""
    rows = [
        row("support_tickets", 1, subject="old", updated_at="2026-01-05T08:00:00Z"),  # line 1
        row("support_tickets", 2, subject="only"),  # line 2
        row("support_tickets", 1, subject="newest", updated_at="2026-01-05T10:00:00Z"),  # 3
        row("support_tickets", 1, subject="middle", updated_at="2026-01-05T09:00:00Z"),  # 4
        row("support_tickets", 3, subject="first tie", updated_at="2026-01-05T09:00:00Z"),  # 5
        row("support_tickets", 3, subject="second tie", updated_at="2026-01-05T09:00:00Z"),  # 6
    ]
    land(tmp_path / "in", "support_tickets", rows)
    for chunk_rows in (100, 1, 2):
        wh = tmp_path / f"wh{chunk_rows}"
        report = ingest_partition(
            "support_tickets", "2026-01-05", tmp_path / "in", wh, "r1", chunk_rows=chunk_rows
        )
        assert (report.rows_valid, report.rows_quarantined, report.rows_superseded) == (3, 3, 3)
        assert report.failed_checks == {"ticket_id:superseded": 3}
        con = connect(wh)
        assert con.execute(
            "SELECT ticket_id, subject FROM support_tickets ORDER BY 1"
        ).fetchall() == [("TCK-11", "newest"), ("TCK-12", "only"), ("TCK-13", "first tie")]
        q = con.execute("SELECT row_number, raw_row, error FROM quarantine ORDER BY 1").fetchall()
        assert [n for n, _, _ in q] == [1, 4, 6]
        assert [json.loads(r)["subject"] for _, r, _ in q] == ["old", "middle", "second tie"]
        assert "is superseded by another row with this key" in q[0][2]


@pytest.mark.parametrize("layout", ["fast", "number_mid_file", "blank_lines"])
def test_jsonl_rows_and_line_numbers_are_the_same_on_every_reader_path(
    tmp_path: Path, layout: str
) -> None:
    """Arrow's JSON reader takes files of string values; a number where a string is expected
    (or broken JSON) hands over to the line reader from that point; blank lines use the line
    reader throughout. The outcome and the reported line numbers are the same."""
    lines = [
        json.dumps(row("support_tickets", i, priority="bad" if i == 4 else "low"))
        for i in range(1, 7)
    ]
    if layout == "number_mid_file":
        lines[4] = lines[4].replace('"Please"', "12.50")  # line 5: a number in a text column
    if layout == "blank_lines":
        lines.insert(2, "")
        lines.insert(5, "   ")
    land(tmp_path / "in", "support_tickets", [], raw="\n".join(lines) + "\n")
    report = ingest_partition(
        "support_tickets", "2026-01-05", tmp_path / "in", tmp_path / "wh", "r1", chunk_rows=2
    )
    assert (report.rows_read, report.rows_valid, report.rows_quarantined) == (6, 5, 1)
    con = connect(tmp_path / "wh")
    ((line, raw),) = con.execute("SELECT row_number, raw_row FROM quarantine").fetchall()
    assert json.loads(raw)["ticket_id"] == "TCK-14"
    assert line == (5 if layout == "blank_lines" else 4)
    got = dict(con.execute("SELECT ticket_id, description FROM support_tickets").fetchall())
    assert got["TCK-15"] == ("12.50" if layout == "number_mid_file" else "Please")
