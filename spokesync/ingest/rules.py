"""The contract's checks as DuckDB SQL, generated from :mod:`spokesync.ingest.contract`.

:func:`scan_query` is the fast path's query (:mod:`spokesync.ingest.scan`): it reads one
landing file with DuckDB's own reader and returns per row the warehouse columns (trimmed,
normalised, parsed exactly), a pass flag, and — for failing rows only — the raw row and each
failure with its column, check and failing value. The streaming readers check chunks already
in Arrow with the same column plans (:mod:`spokesync.ingest.chunk_check`). No pandas and no
per-row Python on the way.

The rules are the pandera schema's (:mod:`spokesync.ingest.schemas`, built from the same
contract), written for DuckDB; ``tests/ingest/test_rules_oracle.py`` checks on generated rows
that both accept and reject the same rows with the same values and the same checks. The
pandera path (:func:`spokesync.ingest.validate.validate_chunk`) stays the reference.

Failing values: for text columns the value as checked (trimmed and normalised, as pandera
sees it); for parsed columns the value as landed (``'-5'``, not pandas' ``-5.0``).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass

import pyarrow as pa

from spokesync.emails import LABEL_RE, LOCAL_RE, MAX_DOMAIN, MAX_LOCAL, known_tlds
from spokesync.ingest.contract import (
    DECIMAL_PRECISION,
    DECIMAL_SCALE,
    EARLIEST,
    SOURCES,
    Column,
)
from spokesync.ingest.lexicon import (
    DATE_TEXT,
    DECIMAL_TEXT,
    INT_TEXT,
    NON_FINITE_TEXT,
    TIMESTAMP_TEXT,
    UNICODE_WHITESPACE,
    VALID_EMAIL,
)

# What Python's str.strip() / Arrow's utf8_trim_whitespace (pandas' .str.strip()) remove:
# UNICODE_WHITESPACE without the zero-width space and the byte-order mark.
STRIP_WHITESPACE = UNICODE_WHITESPACE.replace("\u200b", "").replace("\ufeff", "")
SQL_TYPES = {
    "str": "VARCHAR",
    "int": "BIGINT",
    "decimal": f"DECIMAL({DECIMAL_PRECISION}, {DECIMAL_SCALE})",
    "timestamp": "TIMESTAMPTZ",
    "date": "DATE",
}


def _lit(text: str) -> str:
    """A SQL string literal (contract constants only, never landed values), in ASCII: other
    characters as ``chr(n)`` (DuckDB's Python layer re-indexes the tokens of a non-ASCII
    query in Python, ~0.3 s for a query of this size)."""
    parts, run = [], []
    for ch in text:
        if ch.isascii():
            run.append(ch)
            continue
        if run:
            parts.append("'" + "".join(run).replace("'", "''") + "'")
            run = []
        parts.append(f"chr({ord(ch)})")
    if run or not parts:
        parts.append("'" + "".join(run).replace("'", "''") + "'")
    return parts[0] if len(parts) == 1 else "(" + " || ".join(parts) + ")"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _parse(kind: str, t: str) -> str:
    """Text ``t`` parsed to ``kind`` exactly (NULL when it does not parse): the regex guard
    keeps DuckDB's casts from accepting what the contract does not (``1e3``, ``12,50``)."""
    typ = SQL_TYPES[kind]
    guard = {
        "int": INT_TEXT,
        "decimal": DECIMAL_TEXT,
        "timestamp": TIMESTAMP_TEXT,
        "date": DATE_TEXT,
    }[kind]
    # No trim(): DuckDB's casts skip the ASCII whitespace the guards allow (``\\s``).
    return f"CASE WHEN regexp_full_match({t}, {_lit(guard)}) THEN TRY_CAST({t} AS {typ}) END"


def _typed_input(kind: str, arrow_type: pa.DataType) -> bool:
    """Parquet values already of the column's type (or a lossless relative): used as they are."""
    if kind == "int":
        return pa.types.is_integer(arrow_type)
    if kind == "timestamp":
        return pa.types.is_timestamp(arrow_type)
    if kind == "date":
        return pa.types.is_date(arrow_type) or pa.types.is_timestamp(arrow_type)
    return False


@functools.cache
def _email_ok_sql() -> str:
    """``spokesync.emails.is_valid_email`` on the normalised value ``{v}`` (see emails.py).
    The top-level domain is looked up with one regex alternation (RE2 builds one automaton):
    an ``IN`` list of ~1,500 names costs ~1.4 µs a value, the automaton ~0.1 µs."""
    tlds = "|".join(re.escape(t) for t in sorted(known_tlds()))
    pattern = f"({LOCAL_RE})@({LABEL_RE}(\\.{LABEL_RE})+)"
    return (
        f"(regexp_full_match({{v}}, {_lit(pattern)}) "
        f"AND length(split_part({{v}}, '@', 1)) <= {MAX_LOCAL} "
        f"AND length(split_part({{v}}, '@', 2)) <= {MAX_DOMAIN} "
        f"AND regexp_full_match(regexp_extract({{v}}, '[.]([a-z0-9-]+)$', 1), {_lit(f'({tlds})')}))"
    )


def _is_one_of(code: str, chars: str) -> str:
    """Is the code point ``code`` one of ``chars`` (whitespace: none is in 33–132, where
    nearly every first and last character of real values is, so the list is rarely asked)."""
    assert not any(33 <= ord(c) <= 132 for c in chars)
    codes = ", ".join(str(ord(c)) for c in chars)
    return f"(CASE WHEN {code} BETWEEN 33 AND 132 THEN false ELSE {code} IN ({codes}) END)"


def _trim(x: str, chars: str) -> str:
    """``trim(x, chars)``, asked only of values that start or end with one of ``chars``
    (DuckDB's trim with a character list costs ~1 µs a value; the test costs ~20 ns)."""
    first, last = _is_one_of(f"ord({x})", chars), _is_one_of(f"ord(right({x}, 1))", chars)
    return f"CASE WHEN {first} OR {last} THEN trim({x}, {_lit(chars)}) ELSE {x} END"


def _blank(x: str, chars: str) -> str:
    """``x`` is empty or only ``chars``: a blank value starts with one of them. A CASE, not
    AND/OR: DuckDB evaluates both sides of AND/OR for every row of a vector, a CASE branch
    only for its rows (the trim costs ~1 µs)."""
    first = _is_one_of(f"ord({x})", chars)
    return f"(CASE WHEN {x} = '' THEN true WHEN {first} THEN trim({x}, {_lit(chars)}) = '' END)"


def _normalise(col: Column, v: str) -> str:
    """The fixes of :mod:`spokesync.ingest.normalise`, in SQL (pandas' ``str.strip`` strips
    what Python calls whitespace; its regex replacements are RE2's, like DuckDB's)."""
    stripped = f"lower({_trim(v, STRIP_WHITESPACE)})"
    if col.normalise == "email":
        return stripped
    # canonical_domain: scheme, then path/query/port, then www., then trailing dots.
    x = f"regexp_replace({stripped}, '^[a-z][a-z0-9+.\\-]*://', '')"
    x = f"regexp_replace({x}, '[/?#:].*$', '')"
    x = f"regexp_replace({x}, '^www\\.', '')"
    return f"rtrim({x}, '.')"


@dataclass(frozen=True, slots=True)
class _Check:
    check: str
    failed: str  # SQL on ``{v}`` (the column's value); asked only when the value is usable


@dataclass(frozen=True, slots=True)
class _Plan:
    """One column's SQL, in three layers: its value (on the raw column ``x``), its root
    failure (on ``x`` and the value ``{v}``: ``not_nullable`` / ``blank`` / ``parse_*`` /
    ``not_finite``, NULL when the value is usable) and its checks (on ``{v}``)."""

    col: Column
    text: str  # the raw column as text
    value: str
    root: str
    checks: list[_Check]
    fixes: bool  # trimming or normalising may change the value (normalised rows)
    root_failed: str  # the root failure as a boolean (on ``x`` and ``{v}``), never NULL


def _window_checks(col: Column, day: str | None, v: str) -> list[_Check]:
    typ = SQL_TYPES[col.kind]
    earliest = f"{typ} {_lit(EARLIEST)}"
    window = col.window if day is not None else None
    if window is not None:
        start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)  # type: ignore[arg-type]
        end = start + dt.timedelta(days=1)
        if window == "in_day":
            lo, hi = f"{typ} {_lit(start.isoformat())}", f"{typ} {_lit(end.isoformat())}"
            return [_Check("in_range", f"NOT ({v} >= {lo} AND {v} < {hi})")]
        if window == "not_after_day_end":
            hi = f"{typ} {_lit(end.isoformat())}"
            return [_Check("in_range", f"NOT ({v} >= {earliest} AND {v} <= {hi})")]
        horizon = f"DATE {_lit((start + dt.timedelta(days=31)).date().isoformat())}"
        return [_Check("in_range", f"NOT ({v} >= {earliest} AND {v} <= {horizon})")]
    if col.earliest or col.window == "not_after_day_plus_31":
        return [_Check("greater_than_or_equal_to", f"{v} < {earliest}")]
    return []


def _plan(col: Column, x: str, arrow_type: pa.DataType | None, day: str | None) -> _Plan:
    text = x if arrow_type is None or pa.types.is_string(arrow_type) else f"CAST({x} AS VARCHAR)"
    v = "{v}"
    roots = [] if col.nullable else [f"WHEN {x} IS NULL THEN 'not_nullable'"]
    root_failed = [] if col.nullable else [f"{x} IS NULL"]
    checks: list[_Check] = []
    fixes = False
    if col.kind == "str":
        value = _trim(text, UNICODE_WHITESPACE) if col.identifier else text
        fixes = col.identifier or col.normalise is not None
        if not col.nullable:
            blank = f"{value} = ''" if col.identifier else _blank(text, UNICODE_WHITESPACE)
            roots.append(f"WHEN {blank} THEN 'blank'")
            root_failed.append(f"coalesce({blank}, false)")
        if col.normalise is not None:
            value = _normalise(col, value)
        if col.pattern is not None:
            checks.append(_Check("str_matches", f"NOT regexp_full_match({v}, {_lit(col.pattern)})"))
        if col.normalise == "email":
            checks.append(_Check(VALID_EMAIL, f"NOT {_email_ok_sql()}"))
    elif arrow_type is not None and _typed_input(col.kind, arrow_type):
        value = f"CAST({x} AS {SQL_TYPES[col.kind]})"
    else:
        value = _parse(col.kind, text)
        check = f"'parse_{col.kind}'"
        if col.kind in ("int", "decimal"):
            nf = f"regexp_full_match(lower(trim({text})), {_lit(NON_FINITE_TEXT)})"
            check = f"CASE WHEN {nf} THEN 'not_finite' ELSE {check} END"
        roots.append(f"WHEN {v} IS NULL AND {text} IS NOT NULL THEN {check}")
        root_failed.append(f"({v} IS NULL AND {text} IS NOT NULL)")
    if col.allowed is not None:
        allowed = ", ".join(_lit(a) for a in col.allowed)
        checks.append(_Check("isin", f"{v} NOT IN ({allowed})"))
    if col.minimum is not None:
        checks.append(_Check("greater_than_or_equal_to", f"{v} < {col.minimum}"))
    if col.kind in ("timestamp", "date"):
        checks += _window_checks(col, day, v)
    root = f"CASE {' '.join(roots)} END" if roots else "CAST(NULL AS VARCHAR)"
    return _Plan(col, text, value, root, checks, fixes, " OR ".join(root_failed) or "false")


def _on(condition: str, v: str) -> str:
    """A condition written on ``{v}``, on the column's value ``v``."""
    return condition.replace("{v}", v)


# What DuckDB's JSON reader makes of a value that is not a JSON string, read into a VARCHAR
# column: a number (floats re-rendered: ``12.50`` → ``12.5``), NaN/Infinity, an object or an
# array (re-serialised). A text value that looks like one of these sends the file to the
# line-by-line reader, which keeps every value's landed text.
_JSON_NON_STRING = r"-?([0-9]+([.][0-9]*)?([eE][-+]?[0-9]+)?|NaN|Infinity)|[\[{].*"
_JSON_NON_STRING_FIRST = (45, *range(48, 58), 73, 78, 91, 123)  # - 0-9 I N [ {


def _free_text(col: Column) -> bool:
    """A text column loaded as it is (no pattern, list or email rule): a JSON number landed
    there would load as DuckDB's rendering. In a checked column it fails its check anyway
    (the failure shows the rendering, ``12.5`` for ``12.50``)."""
    return col.kind == "str" and col.pattern is None and col.allowed is None and not col.normalise


@dataclass(frozen=True, slots=True)
class ScanQuery:
    """One landing file read and checked in one DuckDB query (see :func:`scan_query`)."""

    sql: str
    outputs: tuple[str, ...]  # the warehouse columns, in contract order


@functools.lru_cache(maxsize=512)
def scan_query(
    source: str,
    present: tuple[tuple[str, pa.DataType | None], ...],
    day: str | None,
    reader: str,
    null_tokens: tuple[str, ...] | None = None,
    json_text: bool = False,
) -> ScanQuery:
    """The contract's checks over ``reader`` (SQL of a DuckDB table function reading one
    file, its columns ``present``: name and Arrow type, None for text), in one query that
    returns per row, in file order: the warehouse columns, ``__ok``, ``__changed``, the key's
    hash ``__h`` and ``updated_at`` in microseconds ``__u`` (for de-duplication), and for
    failing rows only the raw row as JSON ``__raw`` and the failures ``__fails`` (a list of
    ``{column, check, failure_case}`` in reporting order, as the failures query lists them).

    ``null_tokens``: text values mapped to NULL in SQL (the JSON reader; the CSV reader maps
    them itself, ``$tokens`` is the list). ``json_text``: add ``__odd``, true for a row with a
    value the JSON reader may have re-rendered (see ``_JSON_NON_STRING``)."""
    spec = SOURCES[source]
    types = dict(present)
    names = [n for n, _ in present]
    mapped = []
    for n in names:
        x = _ident(n)
        if null_tokens is not None:
            if null_tokens == ("",):
                x = f"nullif({x}, '')"
            elif null_tokens:
                x = f"CASE WHEN list_contains($tokens, {x}) THEN NULL ELSE {x} END"
        mapped.append(f"{x} AS {_ident(n)}")
    src = f"(SELECT {', '.join(mapped)} FROM {reader})"
    values, outputs, failed_any, changed_parts, items, odd = [], [], [], [], [], []
    for i, col in enumerate(spec.columns):
        x = _ident(col.name) if col.name in types else "CAST(NULL AS VARCHAR)"
        p = _plan(col, x, types.get(col.name), day)
        v = f"__v{i}"
        values.append(f"CAST({p.value} AS {SQL_TYPES[col.kind]}) AS {v}")
        outputs.append(f"{v} AS {_ident(col.name)}")
        failed = [f"coalesce({_on(c.failed, v)}, false)" for c in p.checks]
        # Pass/fail from booleans only; the root's name (a string CASE) is worked out for
        # failing rows only, inside the failure list.
        failed_any += [f"({_on(p.root_failed, v)})", *failed]
        if p.fixes:
            changed_parts.append(f"coalesce({p.text} IS NOT NULL AND {v} <> {p.text}, false)")
        name, r = _lit(col.name), f"({_on(p.root, v)})"
        items.append(
            f"{{'column': {name}, 'check': {r}, "
            f"'failure_case': CASE WHEN {r} <> 'not_nullable' THEN {p.text} END}}"
        )
        for c, cond in zip(p.checks, failed, strict=True):
            items.append(
                f"{{'column': {name}, 'check': CASE WHEN {r} IS NULL AND {cond} "
                f"THEN {_lit(c.check)} END, 'failure_case': CAST({v} AS VARCHAR)}}"
            )
        if json_text and col.name in types and _free_text(col):
            first = ", ".join(str(c) for c in _JSON_NON_STRING_FIRST)
            looks = f"regexp_full_match({x}, {_lit(_JSON_NON_STRING)})"
            odd.append(f"(CASE WHEN ord({x}) IN ({first}) THEN {looks} ELSE false END)")
    key = spec.columns.index(spec.column(spec.key))
    stamp = (
        f"epoch_us(__v{spec.columns.index(spec.column(spec.updated_at))})"
        if spec.updated_at is not None
        else "CAST(NULL AS BIGINT)"
    )
    raw = "{" + ", ".join(f"{_lit(n)}: {_ident(n)}" for n in names) + "}"
    extra = f", coalesce({' OR '.join(odd)}, false) AS __odd" if odd else ""
    checked = (
        f"SELECT *, {' AND '.join(f'NOT {c}' for c in failed_any)} AS __ok, "
        f"{' OR '.join(changed_parts) or 'false'} AS __changed FROM "
        f"(SELECT *, {', '.join(values)} FROM {src})"
    )
    sql = (
        f"SELECT {', '.join(outputs)}, __ok, __changed, hash(__v{key}) AS __h, {stamp} AS __u, "
        f"CASE WHEN NOT __ok THEN CAST(to_json({raw}) AS VARCHAR) END AS __raw, "
        f"CASE WHEN NOT __ok THEN list_filter([{', '.join(items)}], "
        f'lambda f: f."check" IS NOT NULL) END AS __fails{extra} FROM ({checked})'
    )
    return ScanQuery(sql, tuple(c.name for c in spec.columns))
