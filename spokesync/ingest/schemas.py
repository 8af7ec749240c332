"""The pandera schema of each source, built from the contract (:mod:`spokesync.ingest.contract`).

It runs on frames already parsed to their types: a value that cannot be parsed to its type,
a non-finite number or a blank required text is reported by the parse step before these
checks run. Decimal columns are checked as float64 (ranges only); the exact values are
written from Arrow, never from the float copy.
"""

from __future__ import annotations

import functools

import pandas as pd
import pandera.pandas as pa

from spokesync.emails import is_valid_email
from spokesync.ingest.contract import EARLIEST, SOURCES, Column
from spokesync.ingest.lexicon import VALID_EMAIL

PANDERA_DTYPES: dict[str, object] = {
    "str": "str",
    "int": pd.Int64Dtype(),
    "decimal": "float64",
    "timestamp": pd.DatetimeTZDtype(unit="us", tz="UTC"),
    "date": "datetime64[us]",
}
_EARLIEST_UTC = pd.Timestamp(EARLIEST, tz="UTC")
_EARLIEST_NAIVE = pd.Timestamp(EARLIEST)


def _earliest(col: Column) -> pd.Timestamp:
    return _EARLIEST_NAIVE if col.kind == "date" else _EARLIEST_UTC


def _valid_emails(values: pd.Series) -> pd.Series:
    """HubSpot's contact-email rule per value (each distinct address checked once)."""
    return values.map(is_valid_email).astype(bool)


def _full_match(pattern: str) -> pa.Check:
    """The whole value matches ``pattern`` (pandas' ``str.match`` would also accept a trailing
    newline after a ``$``, e.g. ``"US\\n"`` as a country)."""
    return pa.Check(lambda s: s.str.fullmatch(pattern).astype(bool), name="str_matches")


def _checks(col: Column, day: str | None) -> list[pa.Check]:
    checks: list[pa.Check] = []
    if col.pattern is not None:
        checks.append(_full_match(col.pattern))
    if col.normalise == "email":
        checks.append(pa.Check(_valid_emails, name=VALID_EMAIL))
    if col.allowed is not None:
        checks.append(pa.Check.isin(list(col.allowed)))
    if col.minimum is not None:
        checks.append(pa.Check.ge(col.minimum))
    window = col.window if day is not None else None
    if window is not None:
        start = pd.Timestamp(day, tz="UTC")
        end = start + pd.Timedelta(days=1)
        if window == "in_day":
            checks.append(pa.Check.in_range(start, end, include_max=False))
        elif window == "not_after_day_end":
            checks.append(pa.Check.in_range(_earliest(col), end))
        else:  # not_after_day_plus_31 (a date column)
            horizon = (start + pd.Timedelta(days=31)).tz_localize(None)
            checks.append(pa.Check.in_range(_EARLIEST_NAIVE, horizon))
    elif col.earliest or col.window == "not_after_day_plus_31":
        checks.append(pa.Check.ge(_earliest(col)))
    return checks


@functools.lru_cache(maxsize=256)
def schema_for(source: str, day: str | None) -> pa.DataFrameSchema:
    """The source's schema, with the date-range checks that depend on the partition day."""
    spec = SOURCES[source]
    columns = {
        c.name: pa.Column(PANDERA_DTYPES[c.kind], checks=_checks(c, day), nullable=c.nullable)
        for c in spec.columns
    }
    # Extra columns are dropped (and reported) before validation; types are parsed beforehand.
    return pa.DataFrameSchema(columns, strict=False, coerce=False, name=source)
