"""Property-based: any source row is either loaded with exactly its value or quarantined with a
reason, whatever it holds — random Unicode, control characters, very long strings, SQL-looking
text, every null token, numbers at the edges. Never a crash. Bounded examples, so it stays fast."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spokesync.ingest.validate import UNICODE_WHITESPACE
from spokesync.warehouse import connect
from tests.ingest.landing import ingest, land, row

SETTINGS = settings(
    max_examples=12,
    deadline=None,
    # Long generated strings are the point of these tests, and a loaded CI machine is slow:
    # neither is a reason to fail them.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
NULL_TOKENS = ["", "NA", "N/A", "NULL", "null", "nan", "NaN", "#N/A", "None", "-", "n/a"]
SQL_LIKE = ["'; DROP TABLE users; --", '" OR 1=1 --', "$as_of", "{{x}}", "' || '", "%s", "?"]
WHITESPACE = sorted(set(UNICODE_WHITESPACE))

any_text = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),  # incl. control chars
    st.sampled_from(NULL_TOKENS + SQL_LIKE),
    st.text(st.sampled_from(WHITESPACE), min_size=1, max_size=4),
    st.text(min_size=2000, max_size=5000),  # very long
    st.builds(
        lambda a, t, b: a + t + b,
        st.sampled_from(WHITESPACE),
        st.sampled_from(SQL_LIKE),
        st.sampled_from(WHITESPACE),
    ),
)
_ASCII_WS = "\t\n\f\r "  # what the number parser allows around a value
_PLAIN_DECIMAL = re.compile(
    r"[\t\n\f\r ]*[+-]?([0-9]{1,29}(\.[0-9]{0,9})?|\.[0-9]{1,9})[\t\n\f\r ]*"
)
numbers = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=0, max_value=10**27).map(
        str
    ),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(
        [
            "inf",
            "-inf",
            "Infinity",
            "NaN",
            "nan",
            "1e3",
            "",
            " 1.5 ",
            "9" * 29 + ".999999999",
            "0.0000000001",
        ]
    ),
    any_text,
)


def _fresh() -> Path:
    return Path(tempfile.mkdtemp(prefix="values-prop-"))


def _blank(v: str) -> bool:
    return v.strip(UNICODE_WHITESPACE) == ""


def _rows(con, sql: str) -> dict:
    return {r[0]: r[1:] for r in con.execute(sql).fetchall()}


@SETTINGS
@given(st.lists(st.tuples(any_text, any_text), min_size=1, max_size=8))
def test_csv_text_is_loaded_exactly_or_quarantined_with_a_reason(
    values: list[tuple[str, str]],
) -> None:
    """users.first_name (required) and users.job_title (nullable), through CSV."""
    base = _fresh()
    try:
        rows = [row("users", i + 1, first_name=f, job_title=j) for i, (f, j) in enumerate(values)]
        land(base / "in", "users", rows)
        report = ingest(base / "in", base / "wh", "users")
        assert report.rows_read == len(rows)
        con = connect(base / "wh")
        loaded = (
            _rows(con, "SELECT user_id, first_name, job_title FROM users")
            if report.rows_valid
            else {}
        )
        quarantined = (
            {
                json.loads(r)["user_id"]: json.loads(c)
                for r, c in con.execute("SELECT raw_row, failed_checks FROM quarantine").fetchall()
            }
            if report.rows_quarantined
            else {}
        )
        for r, (first, job) in zip(rows, values, strict=True):
            uid = r["user_id"]
            if first == "":
                assert quarantined[uid] == [
                    {"column": "first_name", "check": "not_nullable", "failure_case": None}
                ]
            elif _blank(first):
                assert quarantined[uid] == [
                    {"column": "first_name", "check": "blank", "failure_case": first}
                ]
            else:
                assert uid not in quarantined
                assert loaded[uid] == (first, job if job != "" else None)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@SETTINGS
@given(st.lists(st.tuples(any_text, any_text), min_size=1, max_size=8))
def test_jsonl_text_is_loaded_exactly_or_quarantined_with_a_reason(
    values: list[tuple[str, str]],
) -> None:
    """support_tickets.subject (required) and description (nullable), through JSONL."""
    base = _fresh()
    try:
        rows = [
            row("support_tickets", i + 1, subject=s, description=d)
            for i, (s, d) in enumerate(values)
        ]
        land(base / "in", "support_tickets", rows)
        report = ingest(base / "in", base / "wh", "support_tickets")
        con = connect(base / "wh")
        loaded = (
            _rows(con, "SELECT ticket_id, subject, description FROM support_tickets")
            if report.rows_valid
            else {}
        )
        quarantined = (
            {
                json.loads(r)["ticket_id"]: json.loads(c)
                for r, c in con.execute("SELECT raw_row, failed_checks FROM quarantine").fetchall()
            }
            if report.rows_quarantined
            else {}
        )
        for r, (subject, desc) in zip(rows, values, strict=True):
            tid = r["ticket_id"]
            if subject == "":
                assert quarantined[tid][0]["check"] == "not_nullable"
            elif _blank(subject):
                assert quarantined[tid] == [
                    {"column": "subject", "check": "blank", "failure_case": subject}
                ]
            else:
                assert loaded[tid] == (subject, desc if desc != "" else None)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@SETTINGS
@given(st.lists(numbers, min_size=1, max_size=8))
def test_money_is_loaded_with_its_exact_digits_or_quarantined_with_a_reason(
    values: list[str],
) -> None:
    """subscriptions.mrr (decimal, >= 0), through CSV: never rounded, never "no value"."""
    base = _fresh()
    try:
        rows = [row("subscriptions", i + 1, mrr=v) for i, v in enumerate(values)]
        land(base / "in", "subscriptions", rows)
        report = ingest(base / "in", base / "wh", "subscriptions")
        con = connect(base / "wh")
        loaded = (
            _rows(con, "SELECT subscription_id, mrr FROM subscriptions")
            if report.rows_valid
            else {}
        )
        quarantined = (
            {
                json.loads(r)["subscription_id"]: json.loads(c)
                for r, c in con.execute("SELECT raw_row, failed_checks FROM quarantine").fetchall()
            }
            if report.rows_quarantined
            else {}
        )
        for r, v in zip(rows, values, strict=True):
            sid = r["subscription_id"]
            if v == "":
                assert quarantined[sid][0]["check"] == "not_nullable"
            elif _PLAIN_DECIMAL.fullmatch(v):
                exact = Decimal(v.strip(_ASCII_WS))
                if exact < 0:
                    assert quarantined[sid][0]["check"] == "greater_than_or_equal_to"
                else:
                    assert loaded[sid] == (exact,), v
            else:
                (failure,) = quarantined[sid]
                assert failure["column"] == "mrr"
                assert failure["check"] in ("parse_decimal", "not_finite")
                assert failure["failure_case"] == v
                if re.fullmatch(r"[+-]?(inf|infinity|nan)", v.strip(" "), re.IGNORECASE):
                    assert failure["check"] == "not_finite"
    finally:
        shutil.rmtree(base, ignore_errors=True)
