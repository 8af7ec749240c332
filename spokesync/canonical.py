"""Canonical values: one string form per HubSpot property type.

HubSpot stores every property as a string. Desired values (from the warehouse) and snapshot
values (read back from HubSpot) are both reduced to one canonical string per type before they
are compared, so an unchanged warehouse produces zero writes. ``None`` is the canonical form of
"no value" (``None``, ``""`` and whitespace-only strings all map to it).

Each type has a Python function (used on values HubSpot returns) and a DuckDB SQL expression
builder, :func:`sql_canonical` (used on the desired side, so 20M values never leave DuckDB).
The two agree on every value the property tests generate.

Forms:

- ``string``/``enumeration``: NFC-normalised, trimmed of ASCII whitespace (space, ``\\t \\n \\v
  \\f \\r``); case is kept (enumeration option values are case-sensitive).
- ``email`` (a string property holding an email, e.g. contacts ``email``): as string, lowercased.
- ``domain`` (e.g. companies ``domain``): lowercased bare host: no scheme, ``www.``, port, path,
  query or trailing dot.
- ``number``: the exact decimal, written without exponent, leading zeros or trailing
  fractional zeros (``10.50`` → ``10.5``, ``1e3`` → ``1000``, ``1e-7`` → ``0.0000001``, ``-0`` →
  ``0``). Integers, decimals and numeric text keep every digit (``2**53 + 1``,
  ``12345678901234567890.12`` stay as they are: no float step); a float (DOUBLE) contributes
  the shortest decimal that round-trips it (Python ``repr``). NaN/±inf → no value here, and
  text that is no number stays text (a HubSpot value like that differs, so it is overwritten);
  on the desired side the desired-state builder rejects records holding either before this
  (never sent, not as "no value" either: see :mod:`spokesync.desired`).
- ``bool``: ``true`` / ``false``.
- ``date``: ``YYYY-MM-DD`` (datetimes are taken in UTC; epoch milliseconds accepted).
- ``datetime``: ISO-8601 UTC with milliseconds, ``2026-01-02T03:04:05.000Z`` (naive values are
  UTC; sub-millisecond digits are truncated; epoch milliseconds accepted).
- ``enumeration_multi`` (a HubSpot ``enumeration`` with fieldType ``checkbox``): option values
  split on ``;``, trimmed, empties dropped, de-duplicated, sorted by code point, ``;``-joined.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal

PropertyType = Literal[
    "string", "number", "date", "datetime", "bool", "enumeration", "enumeration_multi"
]
# A canonical "format" refines a type: strings can hold emails or domains.
CanonicalForm = Literal[
    "string",
    "email",
    "domain",
    "number",
    "date",
    "datetime",
    "bool",
    "enumeration",
    "enumeration_multi",
]
CANONICAL_FORMS: tuple[str, ...] = CanonicalForm.__args__  # type: ignore[attr-defined]

_WS = " \t\n\x0b\x0c\r"
_SQL_WS = "' \t\n\x0b\x0c\r'"  # a SQL literal holding the raw whitespace characters
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_MS = re.compile(r"^-?\d{9,}$")
_TRUE = {"true", "t", "1", "yes", "y", "on"}
_FALSE = {"false", "f", "0", "no", "n", "off"}


class CanonicalError(ValueError):
    """A value cannot be read as the property's type."""


# ---------------------------------------------------------------------------- Python side


def _text(value: Any) -> str | None:
    if value is None:
        return None
    s = unicodedata.normalize("NFC", str(value)).strip(_WS)
    return s or None


def canonical_string(value: Any) -> str | None:
    """Trimmed NFC text; ``None`` when empty."""
    return _text(value)


def canonical_enumeration(value: Any) -> str | None:
    """An option's internal value, trimmed (case-sensitive, as HubSpot compares it)."""
    return _text(value)


def canonical_email(value: Any) -> str | None:
    """Trimmed, lowercased email (HubSpot lowercases stored emails)."""
    s = _text(value)
    return s.lower() if s is not None else None


_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*://")
_PATH = re.compile(r"[/?#].*$", re.DOTALL)
_PORT = re.compile(r":[0-9]*$")
_WWW = re.compile(r"^www\.")


def canonical_domain(value: Any) -> str | None:
    """Bare lowercase host: ``https://www.Acme.com:443/x`` → ``acme.com``."""
    s = _text(value)
    if s is None:
        return None
    s = s.lower()
    s = _SCHEME.sub("", s)
    s = _PATH.sub("", s)
    s = _PORT.sub("", s)
    s = _WWW.sub("", s)
    s = s.rstrip(".")
    return s or None


def _format_double(f: float) -> str | None:
    """The shortest round-trip digits of ``f`` (``repr``), written without an exponent."""
    if not math.isfinite(f):
        return None
    if f == 0:
        return "0"
    r = repr(f)
    if "e" not in r:
        return r[:-2] if r.endswith(".0") else r
    mantissa, exp = r.split("e")
    sign = "-" if mantissa.startswith("-") else ""
    whole, _, frac = mantissa.lstrip("-").partition(".")
    digits = whole + frac
    point = len(whole) + int(exp)
    if point <= 0:
        body = "0." + "0" * -point + digits
    elif point >= len(digits):
        body = digits + "0" * (point - len(digits))
    else:
        body = digits[:point] + "." + digits[point:]
    return sign + body


NUMERIC_TEXT = r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"
_NUMERIC_TEXT = re.compile(NUMERIC_TEXT)
_NON_FINITE_TEXT = re.compile(r"[+-]?(inf|infinity|nan)", re.IGNORECASE)


def _format_decimal(d: Decimal) -> str | None:
    """The exact digits of ``d`` in plain notation, without trailing fractional zeros."""
    if not d.is_finite():
        return None
    if d == 0:
        return "0"
    body = format(d, "f")
    if "." in body:
        body = body.rstrip("0").rstrip(".")
    return body


def canonical_number(value: Any) -> str | None:
    """Plain exact decimal without exponent or trailing zeros (see module doc)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _format_double(value)
    if isinstance(value, Decimal):
        return _format_decimal(value)
    if isinstance(value, str):
        s = value.strip(_WS)
        if not s:
            return None
        if _NUMERIC_TEXT.fullmatch(s):
            return _format_decimal(Decimal(s))
        if _NON_FINITE_TEXT.fullmatch(s):
            return None
        return _text(s)  # not a number: kept as text, so it differs and gets overwritten
    raise CanonicalError(f"not a number: {value!r}")


def canonical_bool(value: Any) -> str | None:
    """``true`` / ``false``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return "true" if value != 0 else "false"
    s = _text(value)
    if s is None:
        return None
    low = s.lower()
    if low in _TRUE:
        return "true"
    if low in _FALSE:
        return "false"
    return s


def _to_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _parse_temporal(value: Any) -> dt.datetime | dt.date | None | str:
    """A date/datetime from Python objects, ISO strings or epoch-ms strings; text if unparsable."""
    if value is None:
        return None
    if isinstance(value, dt.datetime | dt.date):
        return value
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp
        return value.to_pydatetime()
    if isinstance(value, int) and not isinstance(value, bool):
        return _EPOCH + dt.timedelta(milliseconds=value)
    s = _text(value)
    if s is None:
        return None
    if _EPOCH_MS.match(s):
        return _EPOCH + dt.timedelta(milliseconds=int(s))
    try:
        if len(s) == 10:
            return dt.date.fromisoformat(s)
        return dt.datetime.fromisoformat(s.replace("z", "Z"))
    except ValueError:
        return s


def canonical_date(value: Any) -> str | None:
    """``YYYY-MM-DD``; a datetime contributes its UTC date."""
    v = _parse_temporal(value)
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, dt.datetime):
        v = _to_utc(v).date()
    return v.isoformat()


def canonical_datetime(value: Any) -> str | None:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC; a date is its UTC midnight."""
    v = _parse_temporal(value)
    if v is None or isinstance(v, str):
        return v
    if not isinstance(v, dt.datetime):
        v = dt.datetime(v.year, v.month, v.day, tzinfo=dt.UTC)
    v = _to_utc(v)
    return v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}Z"


def canonical_enumeration_multi(value: Any) -> str | None:
    """Option values sorted and ``;``-joined; a list/tuple/set is accepted too."""
    if value is None:
        return None
    parts = value if isinstance(value, list | tuple | set | frozenset) else str(value).split(";")
    items = sorted({t for p in parts if (t := _text(p)) is not None})
    return ";".join(items) or None


CANONICALIZERS: dict[str, Callable[[Any], str | None]] = {
    "string": canonical_string,
    "email": canonical_email,
    "domain": canonical_domain,
    "number": canonical_number,
    "date": canonical_date,
    "datetime": canonical_datetime,
    "bool": canonical_bool,
    "enumeration": canonical_enumeration,
    "enumeration_multi": canonical_enumeration_multi,
}


def canonical(form: str, value: Any) -> str | None:
    """Canonicalise ``value`` as ``form`` (a property type, or ``email`` / ``domain``)."""
    try:
        fn = CANONICALIZERS[form]
    except KeyError:
        raise CanonicalError(
            f"unknown canonical form {form!r}; expected one of {', '.join(CANONICAL_FORMS)}"
        ) from None
    return fn(value)


# ---------------------------------------------------------------------------- DuckDB side


def _sql_nfc(v: str) -> str:
    """``nfc_normalize(v)`` that keeps a NUL and what follows it: DuckDB's stops at the first
    NUL of a non-ASCII string (NUL composes with nothing, so each piece normalises alone)."""
    pieces = f"list_transform(string_split({v}, chr(0)), lambda x: nfc_normalize(x))"
    return (
        f"(CASE WHEN contains({v}, chr(0)) THEN array_to_string({pieces}, chr(0)) "
        f"ELSE nfc_normalize({v}) END)"
    )


def _sql_text(expr: str, source_type: str = "") -> str:
    # Parenthesised: ``expr`` may be ``a || b``, and ``v[1]`` must index the whole value.
    v = f"({expr})" if source_type == "VARCHAR" else f"CAST(({expr}) AS VARCHAR)"
    # Fast path: most values have no leading/trailing whitespace (all of it is <= ' ').
    return (
        f"(CASE WHEN ord({v}[1]) > 32 AND ord({v}[-1]) > 32 THEN {_sql_nfc(v)} "
        f"ELSE NULLIF(trim({_sql_nfc(v)}, {_SQL_WS}), '') END)"
    )


def _sql_exact_number_text(t: str) -> str:
    """SQL: numeric text ``t`` (matching ``NUMERIC_TEXT``) as its exact plain decimal."""
    parts = (
        f"regexp_extract({t}, '^[+-]?([0-9]*)\\.?([0-9]*)(?:[eE]([-+]?[0-9]+))?$', ['w', 'f', 'e'])"
    )
    # dg: all digits without leading zeros; p: where the point goes in dg.
    return (
        f"list_transform([{parts}], lambda m: list_transform("
        "[{'dg': ltrim(m.w || m.f, '0'), 'p': length(m.w) + coalesce(TRY_CAST(NULLIF(m.e, '') AS BIGINT), 0)"
        " - (length(m.w || m.f) - length(ltrim(m.w || m.f, '0')))}], lambda z: "
        "CASE WHEN z.dg = '' THEN '0' ELSE "
        f"(CASE WHEN starts_with({t}, '-') THEN '-' ELSE '' END) || "
        "list_transform([CASE WHEN z.p <= 0 THEN '0.' || repeat('0', CAST(-z.p AS INTEGER)) || z.dg "
        "WHEN z.p >= length(z.dg) THEN z.dg || repeat('0', CAST(z.p - length(z.dg) AS INTEGER)) "
        "ELSE z.dg[1:z.p] || '.' || z.dg[z.p + 1:] END], lambda b: "
        "CASE WHEN contains(b, '.') THEN rtrim(rtrim(b, '0'), '.') ELSE b END)[1] END)[1])[1]"
    )


def _sql_number_text(expr: str) -> str:
    """SQL canonical number of a text value: exact digits, like ``canonical_number(str)``."""
    t = f"trim(CAST(({expr}) AS VARCHAR), {_SQL_WS})"
    return (
        f"(CASE WHEN {t} = '' THEN NULL"
        f" WHEN regexp_full_match({t}, '{NUMERIC_TEXT}') THEN {_sql_exact_number_text(t)}"
        f" WHEN regexp_full_match({t}, '[+-]?(inf|infinity|nan)', 'i') THEN NULL"
        f" ELSE {_sql_text(expr)} END)"
    )


def _sql_number(expr: str) -> str:
    d = f"TRY_CAST(({expr}) AS DOUBLE)"
    txt = f"CAST({d} AS VARCHAR)"  # DuckDB prints the shortest round-trip digits, like repr
    # Expand an exponent (only rows that have one take this branch). Lambdas bind locals.
    parts = f"regexp_extract({txt}, '^-?([0-9]+)\\.?([0-9]*)e([-+][0-9]+)$', ['w', 'f', 'e'])"
    expand = (
        f"list_transform([{parts}], lambda m: list_transform("
        "[{'dg': m.w || m.f, 'p': length(m.w) + CAST(m.e AS INTEGER)}], lambda z: "
        "CASE WHEN z.p <= 0 THEN '0.' || repeat('0', -z.p) || z.dg "
        "WHEN z.p >= length(z.dg) THEN z.dg || repeat('0', z.p - length(z.dg)) "
        "ELSE z.dg[1:z.p] || '.' || z.dg[z.p + 1:] END)[1])[1]"
    )
    return (
        f"(CASE WHEN {d} IS NULL OR NOT isfinite({d}) THEN NULL"
        f" WHEN {d} = 0 THEN '0'"
        f" WHEN NOT contains({txt}, 'e') THEN (CASE WHEN ends_with({txt}, '.0') "
        f"THEN {txt}[:-3] ELSE {txt} END)"
        f" ELSE (CASE WHEN {d} < 0 THEN '-' ELSE '' END) || {expand} END)"
    )


def _sql_number_any(expr: str) -> str:
    """The number form when the source type is not known when the SQL is built: chosen per
    value by ``typeof``, with the same result as the typed fast paths."""
    ty = f"typeof({expr})"
    integer = ", ".join(f"'{t}'" for t in sorted(_INTEGER_TYPES))
    decimal = (
        f"(CASE WHEN TRY_CAST(({expr}) AS DOUBLE) = 0 THEN '0' "
        f"WHEN contains(CAST(({expr}) AS VARCHAR), '.') "
        f"THEN rtrim(rtrim(CAST(({expr}) AS VARCHAR), '0'), '.') ELSE CAST(({expr}) AS VARCHAR) END)"
    )
    return (
        f"(CASE WHEN {ty} IN ({integer}) THEN CAST(({expr}) AS VARCHAR)"
        f" WHEN starts_with({ty}, 'DECIMAL') THEN {decimal}"
        f" WHEN {ty} = 'VARCHAR' THEN {_sql_number_text(expr)}"
        f" ELSE {_sql_number(expr)} END)"
    )


def _sql_bool(expr: str) -> str:
    # Text: the same words as canonical_bool (trimmed, any case); other types: DuckDB's cast.
    t = f"lower(trim(CAST(({expr}) AS VARCHAR), {_SQL_WS}))"
    yes = ", ".join(f"'{w}'" for w in sorted(_TRUE))
    no = ", ".join(f"'{w}'" for w in sorted(_FALSE))
    b = f"TRY_CAST(({expr}) AS BOOLEAN)"
    return (
        f"(CASE WHEN typeof({expr}) = 'VARCHAR' THEN (CASE WHEN {t} IN ({yes}) THEN 'true' "
        f"WHEN {t} IN ({no}) THEN 'false' END) "
        f"WHEN {b} IS NULL THEN NULL WHEN {b} THEN 'true' ELSE 'false' END)"
    )


def _sql_date(expr: str) -> str:
    # TRY_CAST: text that is no date gives NULL (the desired-state builder rejects its record),
    # never an error that stops every record.
    d = f"TRY_CAST(({expr}) AS DATE)"  # 'infinity' casts to a date: no day to send
    return f"(CASE WHEN isfinite({d}) THEN strftime({d}, '%Y-%m-%d') END)"


def _sql_datetime(expr: str) -> str:
    # Requires the session TimeZone to be UTC (see configure_connection).
    ts = f"TRY_CAST(TRY_CAST(({expr}) AS TIMESTAMPTZ) AS TIMESTAMP)"
    return f"(CASE WHEN isfinite({ts}) THEN strftime({ts}, '%Y-%m-%dT%H:%M:%S.%gZ') END)"


def _sql_domain(expr: str) -> str:
    s = f"lower({_sql_text(expr)})"
    s = f"regexp_replace({s}, '^[a-z][a-z0-9+.\\-]*://', '')"
    s = f"regexp_replace({s}, '[/?#].*$', '', 's')"
    s = f"regexp_replace({s}, ':[0-9]*$', '')"
    s = f"regexp_replace({s}, '^www\\.', '')"
    return f"NULLIF(rtrim({s}, '.'), '')"


def _sql_multi(expr: str) -> str:
    parts = (
        f"list_filter(list_transform(string_split(CAST(({expr}) AS VARCHAR), ';'),"
        f" lambda p: trim({_sql_nfc('p')}, {_SQL_WS})), lambda p: p <> '')"
    )
    return f"NULLIF(array_to_string(list_sort(list_distinct({parts})), ';'), '')"


_SQL_BUILDERS: dict[str, Callable[[str], str]] = {
    "string": _sql_text,
    "enumeration": _sql_text,
    "email": lambda e: f"lower({_sql_text(e)})",
    "domain": _sql_domain,
    "number": lambda e: _sql_number_any(e),
    "bool": _sql_bool,
    "date": _sql_date,
    "datetime": _sql_datetime,
    "enumeration_multi": _sql_multi,
}
_INTEGER_TYPES = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}
    | {"UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}
)
_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")


def _typed_fast_path(form: str, expr: str, source_type: str) -> str | None:
    """A cheaper expression giving the same result for a known source type, if there is one."""
    if form in ("string", "enumeration", "email") and source_type == "VARCHAR":
        text = _sql_text(expr, "VARCHAR")
        return f"lower({text})" if form == "email" else text
    if form == "number" and source_type in _INTEGER_TYPES:
        return f"CAST(({expr}) AS VARCHAR)"  # every digit, at any size
    m = _DECIMAL.match(source_type)
    if form == "number" and m:
        # A DECIMAL prints its exact digits; only trailing fractional zeros go.
        if int(m.group(2)) == 0:
            return f"CAST(({expr}) AS VARCHAR)"
        return (
            f"(CASE WHEN ({expr}) = 0 THEN '0' "
            f"ELSE rtrim(rtrim(CAST(({expr}) AS VARCHAR), '0'), '.') END)"
        )
    if form == "number" and source_type == "VARCHAR":
        return _sql_number_text(expr)
    if form == "datetime" and source_type == "TIMESTAMP":
        return f"strftime(({expr}), '%Y-%m-%dT%H:%M:%S.%gZ')"
    if form == "datetime" and source_type == "TIMESTAMP WITH TIME ZONE":
        return f"strftime(CAST(({expr}) AS TIMESTAMP), '%Y-%m-%dT%H:%M:%S.%gZ')"
    if form == "date" and source_type == "DATE":
        return f"strftime(({expr}), '%Y-%m-%d')"
    return None


def sql_canonical(form: str, expr: str, source_type: str | None = None) -> str:
    """A DuckDB SQL expression giving the canonical form of ``expr`` (NULL for no value).

    ``expr`` is trusted SQL (a quoted column or a mapping expression). ``source_type`` (DuckDB's
    name of the expression's type, e.g. ``BIGINT``) enables cheaper equivalent expressions.
    Temporal forms need the connection's ``TimeZone`` set to UTC (:func:`configure_connection`).
    """
    try:
        builder = _SQL_BUILDERS[form]
    except KeyError:
        raise CanonicalError(
            f"unknown canonical form {form!r}; expected one of {', '.join(CANONICAL_FORMS)}"
        ) from None
    if source_type:
        fast = _typed_fast_path(form, expr, source_type.upper())
        if fast is not None:
            return fast
    return builder(expr)


def configure_connection(con: Any) -> None:
    """Session settings the SQL canonical forms rely on (UTC for temporal casts)."""
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
