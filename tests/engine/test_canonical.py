"""Canonical values: Python and DuckDB SQL agree, forms are idempotent, and what HubSpot
stores and returns canonicalises back to the same value (so an unchanged warehouse is quiet)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spokesync.canonical import canonical, configure_connection, sql_canonical

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    configure_connection(c)
    return c


def sql_many(
    con: duckdb.DuckDBPyConnection,
    form: str,
    values: list[Any],
    sql_type: str,
    typed: bool = False,
) -> list:
    """Canonicalise each value in DuckDB, passed as a typed parameter list; ``typed`` uses the
    fast path for the known source type."""
    expr = sql_canonical(form, "v", sql_type if typed else None)
    rows = con.execute(
        f"SELECT i, {expr} FROM (SELECT unnest(range(len($1))) AS i, "
        f"unnest(CAST($1 AS {sql_type}[])) AS v) ORDER BY i",
        [values],
    ).fetchall()
    return [r[1] for r in rows]


WS = st.sampled_from([" ", "\t", "\n", "\r", ""])
text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30
)
padded_text = st.builds(lambda a, s, b: a + s + b, WS, text, WS)
finite_floats = st.floats(allow_nan=False, allow_infinity=False, width=64)
money = st.decimals(min_value=-(10**9), max_value=10**9, places=2, allow_nan=False)
datetimes = st.datetimes(
    min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)
)
option = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC_0123456789", min_size=1, max_size=8)
multi = st.lists(st.builds(lambda a, o, b: a + o + b, WS, option, WS), max_size=6).map(";".join)
numeric_text = st.builds(
    lambda ws, sign, whole, frac, exp: ws + sign + whole + frac + exp + ws,
    WS,
    st.sampled_from(["", "-", "+"]),
    st.from_regex(r"[0-9]{0,25}", fullmatch=True),
    st.one_of(st.just(""), st.from_regex(r"\.[0-9]{0,12}", fullmatch=True)),
    st.one_of(st.just(""), st.from_regex(r"[eE][+-]?[0-9]{1,2}", fullmatch=True)),
).filter(lambda s: any(c.isdigit() for c in s.split("e")[0].split("E")[0]))
emails = st.emails().map(lambda e: e if e.isascii() else "x@example.com")

CASES = [
    ("string", padded_text, "VARCHAR"),
    ("enumeration", padded_text, "VARCHAR"),
    ("email", st.builds(lambda a, e, b: a + e.upper() + b, WS, emails, WS), "VARCHAR"),
    ("number", finite_floats, "DOUBLE"),
    ("number", st.integers(min_value=-(2**62), max_value=2**62), "BIGINT"),
    ("number", money, "DECIMAL(18,2)"),
    ("number", st.decimals(-(10**10), 10**10, places=4, allow_nan=False), "DECIMAL(15,4)"),
    ("number", st.integers(-(2**31), 2**31 - 1), "INTEGER"),
    ("number", st.integers(-(2**60), 2**60), "HUGEINT"),
    ("number", st.integers(-(2**126), 2**126), "HUGEINT"),
    ("number", st.integers(-(2**63), 2**63 - 1), "BIGINT"),
    ("number", st.decimals(-(10**29) + 1, 10**29 - 1, places=9, allow_nan=False), "DECIMAL(38,9)"),
    ("number", numeric_text, "VARCHAR"),
    ("number", finite_floats.map(repr), "VARCHAR"),
    ("bool", st.booleans(), "BOOLEAN"),
    ("date", st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2200, 1, 1)), "DATE"),
    ("date", datetimes, "TIMESTAMPTZ"),
    ("datetime", datetimes, "TIMESTAMPTZ"),
    ("datetime", datetimes.map(lambda d: d.replace(tzinfo=None)), "TIMESTAMP"),
    ("enumeration_multi", multi, "VARCHAR"),
    (
        "domain",
        st.builds(
            lambda scheme, www, host, port, path: f"{scheme}{www}{host}{port}{path}",
            st.sampled_from(["", "http://", "HTTPS://"]),
            st.sampled_from(["", "www.", "WWW."]),
            st.from_regex(r"[a-z0-9]{1,10}\.(com|io|co\.uk)", fullmatch=True),
            st.sampled_from(["", ":8080"]),
            st.sampled_from(["", "/", "/about?x=1", "#top"]),
        ),
        "VARCHAR",
    ),
]


@pytest.mark.parametrize(
    ("form", "strategy", "sql_type"), CASES, ids=[c[0] + "-" + c[2] for c in CASES]
)
def test_python_and_sql_agree_and_are_idempotent(
    con: duckdb.DuckDBPyConnection, form: str, strategy: st.SearchStrategy, sql_type: str
) -> None:
    @SETTINGS
    @given(st.lists(strategy, min_size=1, max_size=20))
    def check(values: list[Any]) -> None:
        expected = [canonical(form, v) for v in values]
        assert sql_many(con, form, values, sql_type) == expected
        assert sql_many(con, form, values, sql_type, typed=True) == expected
        for value in expected:
            assert canonical(form, value) == value  # idempotent on its own output
        # ... and the SQL form is idempotent over canonical strings too
        strings = [v for v in expected if v is not None]
        if strings:
            assert sql_many(con, form, strings, "VARCHAR") == strings

    check()


@pytest.mark.parametrize(
    ("form", "sent", "returned"),
    [
        # what we send (a warehouse value) vs what HubSpot stores and hands back
        ("number", Decimal("10.50"), "10.5"),
        ("number", 10.5, "10.50"),
        ("number", 1000, "1000.0"),
        ("number", 1e20, "100000000000000000000"),
        ("number", -0.0, "0"),
        ("date", dt.date(2026, 1, 5), "2026-01-05"),
        ("date", dt.date(2026, 1, 5), "1767571200000"),  # epoch ms at midnight UTC
        ("datetime", dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "2026-01-02T03:04:05Z"),
        ("datetime", dt.datetime(2026, 1, 2, 3, 4, 5, 123456), "2026-01-02T03:04:05.123Z"),
        ("datetime", "2026-01-02T04:04:05+01:00", "2026-01-02T03:04:05.000Z"),
        ("datetime", dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "1767323045000"),
        ("bool", True, "true"),
        ("bool", 0, "false"),
        ("enumeration_multi", "b;a;b", ";a;b"),
        ("email", "Luke@LukesDiner.com ", "luke@lukesdiner.com"),
        ("domain", "https://www.Acme.com/pricing", "acme.com"),
        ("string", "Cafe\u0301 ", "Café"),
    ],
)
def test_values_as_hubspot_returns_them_compare_equal(form: str, sent: Any, returned: str) -> None:
    assert canonical(form, sent) == canonical(form, returned)


@pytest.mark.parametrize(
    "form", ["string", "number", "date", "datetime", "bool", "enumeration_multi"]
)
@pytest.mark.parametrize("empty", [None, "", "   ", "\t\n"])
def test_empty_values_are_none(con: duckdb.DuckDBPyConnection, form: str, empty: Any) -> None:
    assert canonical(form, empty) is None
    if empty is not None and form not in ("date", "datetime"):
        assert con.execute(f"SELECT {sql_canonical(form, '$1')}", [empty]).fetchone() == (None,)


def test_number_forms() -> None:
    assert [canonical("number", v) for v in (0.1 + 0.2, 1 / 3, 2.5e-7, 123456789012345678)] == [
        "0.30000000000000004",
        "0.3333333333333333",
        "0.00000025",
        "123456789012345678",  # an int keeps every digit (no float step)
    ]
    assert canonical("number", 2**53 + 1) == "9007199254740993"
    assert canonical("number", "12345678901234567890.120") == "12345678901234567890.12"
    assert canonical("number", Decimal("1E+21")) == "1000000000000000000000"
    assert canonical("number", "n/a") == "n/a"  # kept as text: differs, so it gets overwritten
    assert canonical("number", float("nan")) is None
