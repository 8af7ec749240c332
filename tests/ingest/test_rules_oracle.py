"""The engine's DuckDB checks (spokesync.ingest.rules) against the pandera schema, the oracle:
on generated rows of every source — random Unicode, control characters, blanks of every kind,
null-looking tokens, SQL-looking text, numbers at the edges, dates and timestamps in and out of
their windows, emails HubSpot would and would not take — both accept and reject exactly the
same rows, load the same values, count the same normalised rows and report the same checks."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spokesync.emails import is_valid_email
from spokesync.ingest.chunk_check import check_chunk
from spokesync.ingest.contract import SOURCES, Column
from spokesync.ingest.validate import UNICODE_WHITESPACE, validate_chunk
from tests.ingest.landing import DAY, VALID

SETTINGS = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NULL_TOKENS = ["", "NA", "N/A", "NULL", "null", "nan", "NaN", "#N/A", "None", "-", "n/a"]
SQL_LIKE = ["'; DROP TABLE users; --", '" OR 1=1 --', "$as_of", "{{x}}", "' || '", "%s", "?"]
WHITESPACE = sorted(set(UNICODE_WHITESPACE))
ws = st.text(st.sampled_from(WHITESPACE), max_size=2)


def _padded(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.builds(lambda a, v, b: a + v + b, ws, inner, ws)


any_text = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),  # incl. control chars
    st.sampled_from(NULL_TOKENS + SQL_LIKE),
    st.text(st.sampled_from(WHITESPACE), min_size=1, max_size=3),
)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        [
            "inf",
            "-inf",
            "+Infinity",
            "NaN",
            "1e3",
            " 1.5 ",
            "3.0",
            "-0",
            "0",
            "1",
            "12,50",
            "9" * 29 + ".999999999",
            "1" * 30,
            "0.0000000001",
            "9223372036854775808",
            "+7",
        ]
    ),  # fmt: skip
)
dates = st.one_of(
    st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2030, 12, 31)).map(str),
    st.sampled_from(["2026-02-30", "01/02/2025", "2026-1-5", "20260105", " 2026-01-05 "]),
)
stamps = st.one_of(
    st.datetimes(
        min_value=dt.datetime(1995, 1, 1),
        max_value=dt.datetime(2030, 1, 1),
        timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-5))]),
    ).map(lambda d: d.isoformat()),
    st.datetimes(min_value=dt.datetime(2026, 1, 4, 20), max_value=dt.datetime(2026, 1, 6, 4)).map(
        lambda d: d.isoformat(sep=" ") + "Z"
    ),
    st.sampled_from(["2026-01-05", "2026-01-06T00:00:00Z", "2025-13-45T00:00:00Z", "yesterday"]),
)
tlds = st.sampled_from(["com", "io", "co", "con", "ik", "test", "xn--p1ai", "c0m", "museum", ""])
label = st.text(st.sampled_from("abcxyzAZ09-_.é"), min_size=0, max_size=8)
emails = st.builds(
    lambda local, at, dom, tld: f"{local}{at}{dom}.{tld}",
    st.text(st.sampled_from("abcAZ09.+'_-!\n é"), min_size=0, max_size=10),
    st.sampled_from(["@", "@", "@@", " at "]),
    label,
    tlds,
)
domains = st.builds(
    lambda scheme, www, dom, tld, tail: f"{scheme}{www}{dom}.{tld}{tail}",
    st.sampled_from(["", "https://", "HTTP://", "ftp+x://"]),
    st.sampled_from(["", "www.", "WWW."]),
    label,
    tlds,
    st.sampled_from(["", "/about", ":8080", "?q=1", ".", "..", "#x"]),
)


def _values(source: str, col: Column) -> st.SearchStrategy[str | None]:
    if col.kind in ("int", "decimal"):
        kinds = numbers
    elif col.kind == "date":
        kinds = dates
    elif col.kind == "timestamp":
        kinds = stamps
    elif col.normalise == "email":
        kinds = _padded(emails)
    elif col.normalise == "domain":
        kinds = _padded(domains)
    elif col.allowed is not None:
        kinds = _padded(st.sampled_from([*col.allowed, col.allowed[0].lower(), "other"]))
    elif col.pattern is not None or col.identifier:
        good = str(VALID[source][col.name])
        kinds = _padded(st.sampled_from([good, good + "x", good.replace("-", ""), "ACC-١٢"]))
    else:
        kinds = st.just(str(VALID[source][col.name]))
    return st.one_of(st.none(), kinds, any_text, st.just(VALID[source][col.name]))


def _rows(source: str) -> st.SearchStrategy[list[dict[str, str | None]]]:
    """Rows of ``source``: mostly its valid row with a few columns replaced."""
    spec = SOURCES[source]
    one = st.fixed_dictionaries(
        {
            c.name: st.one_of(st.just(VALID[source][c.name]), _values(source, c))
            for c in spec.columns
        }
    )
    return st.lists(one, min_size=1, max_size=12)


def _oracle_arrow(validated, schema: pa.Schema, valid: np.ndarray) -> pa.Table:  # type: ignore[no-untyped-def]
    """The valid rows of the pandera path with the warehouse types (decimals exact)."""
    mask = pa.array(valid)
    rows = validated.frame[valid]
    arrays = [
        validated.exact[f.name].filter(mask).cast(f.type)
        if f.name in validated.exact
        else pa.array(rows[f.name], from_pandas=True).cast(f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=pa.schema([f.with_nullable(True) for f in schema]))


def _failures(frame, text_columns: set[str]) -> set[tuple]:  # type: ignore[no-untyped-def]
    out = set()
    for r in frame.itertuples():
        case = None if isinstance(r.failure_case, float) else r.failure_case  # NaN: no value
        comparable = r.column in text_columns and not (
            r.check == "valid_email" and case is not None and not str(case).isascii()
        )  # parsed values are reported as landed by the SQL path, as pandas types by pandera
        out.add((int(r.pos), r.column, r.check, case if comparable else "…"))
    return out


def _agree(source: str, rows: list[dict[str, str | None]], table: pa.Table | None = None) -> None:
    spec = SOURCES[source]
    day = DAY if spec.partitioned else None
    if table is None:
        table = pa.Table.from_pylist(rows, schema=pa.schema([(c, pa.string()) for c in rows[0]]))
    fast = check_chunk(source, table, day)
    frame = table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)  # as the readers did
    oracle = validate_chunk(source, frame, day)
    assert fast.valid.tolist() == oracle.valid.tolist(), (fast.failures, oracle.failures)
    assert fast.normalised == oracle.normalised
    text = {c.name for c in spec.columns if c.kind == "str"}
    assert _failures(fast.failures, text) == _failures(oracle.failures, text)
    schema = spec.arrow_schema()
    got = fast.table.filter(pa.array(fast.valid))
    assert got.to_pylist() == _oracle_arrow(oracle, schema, oracle.valid).to_pylist()


@pytest.mark.parametrize("source", [s for s in SOURCES if SOURCES[s].format != "parquet"])
def test_sql_checks_agree_with_pandera_on_text_rows(source: str) -> None:
    @SETTINGS
    @given(_rows(source))
    def check(rows: list[dict[str, str | None]]) -> None:
        _agree(source, rows)

    check()


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), any_text, st.sampled_from(["E1", " E1", "E1\u00a0"])),
            st.one_of(st.none(), st.sampled_from(["login", "logout", "Login", " login"])),
            st.one_of(
                st.none(),
                st.datetimes(min_value=dt.datetime(2026, 1, 4), max_value=dt.datetime(2026, 1, 7)),
            ),
            st.one_of(st.none(), st.integers(min_value=-3, max_value=2**62)),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_sql_checks_agree_with_pandera_on_typed_parquet_rows(rows: list[tuple]) -> None:
    table = pa.table(
        {
            "event_id": pa.array([r[0] for r in rows], pa.string()),
            "account_id": pa.array(["ACC-1"] * len(rows), pa.string()),
            "user_id": pa.array(["USR-1"] * len(rows), pa.string()),
            "event_type": pa.array([r[1] for r in rows], pa.string()),
            "occurred_at": pa.array(
                [r[2] and r[2].replace(tzinfo=dt.UTC) for r in rows], pa.timestamp("us", "UTC")
            ),
            "quantity": pa.array([r[3] for r in rows], pa.int64()),
        }
    )
    _agree("product_usage", [], table)


@pytest.mark.parametrize(
    "email",
    ["sam@acme.com", " Sam@ACME.com\u3000", "x@example.con", "x@wales.nhs.ik", "a..b@acme.com",
     "a@-acme.com", "a@acme-.com", "abc\n@acme.com", "a@acme\n.com", "a@acme.xn--p1ai",
     "a@b@acme.com", "@acme.com", "a@acme", "a" * 65 + "@acme.com", "a@" + "b" * 64 + ".com",
     "o'brien+tag@acme.co.uk", "a@acme.test", "\u212aelvin@acme.com"],
)  # fmt: skip
def test_the_email_check_is_hubspots_rule(email: str) -> None:
    row = dict(VALID["users"], email=email)
    fast = check_chunk("users", pa.Table.from_pylist([row]), None)
    normalised = email.strip().lower()
    assert fast.valid.tolist() == [is_valid_email(normalised)], email
    _agree("users", [row])
