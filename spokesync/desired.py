"""Desired state: what HubSpot should hold, from a mapping's SQL over the warehouse.

:func:`build_desired` runs the mapping's source query for one ``as_of`` date inside DuckDB,
projects every field (column or expression), canonicalises it in SQL
(:func:`spokesync.canonical.sql_canonical`) and leaves a table ``desired`` with one row per
record: ``external_id`` plus one column per HubSpot property (canonical strings, NULL = no
value). Rows with a NULL/empty id are rejected and counted; duplicate ids (by canonical key)
are reduced to one row (the latest by ``as_of_column`` if the mapping names one, then a stable
order) and reported. Nothing is loaded into Python.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from spokesync import warehouse
from spokesync.canonical import NUMERIC_TEXT, configure_connection, sql_canonical
from spokesync.mapping.spec import FieldSpec, MappingSpec, quote_identifier
from spokesync.quality import register_macros
from spokesync.rollout import Rollout

DESIRED_TABLE = "desired"
ID_COLUMN = "external_id"


class DesiredStateError(RuntimeError):
    """The mapping's SQL could not produce desired state; the message names file and field."""


@dataclass(slots=True)
class DesiredStats:
    object_type: str
    as_of: dt.date
    source_rows: int = 0
    records: int = 0
    rejected_ids: int = 0  # rows whose id is NULL or empty
    # rows with a value their field cannot send: a number that is inf or NaN, a date that is not
    # a date, … (never sent: not as "no value", which null_policy clear would turn into a clear)
    rejected_non_finite: int = 0
    duplicates: int = 0  # rows dropped because another row had the same canonical id
    duplicate_samples: list[str] = field(default_factory=list)
    # per gate: records failing it (their gated fields are never written), and the first few
    gated: dict[str, int] = field(default_factory=dict)
    gate_samples: list[tuple[str, str, str]] = field(default_factory=list)  # (id, gate, reason)
    # per report: records matching it (nothing held back), and the first few ids
    reported: dict[str, int] = field(default_factory=dict)
    report_samples: dict[str, list[str]] = field(default_factory=dict)


GATE_PREFIX = "__gate_"
EVENT_PREFIX = "__event_"
REPORT_PREFIX = "__report_"
SAMPLES = 20


def _params(mapping: MappingSpec, as_of: dt.date, sql: str | None = None) -> dict[str, object]:
    """The named parameters ``sql`` (default: the source query) uses: ``$as_of`` and the
    mapping's ``parameters``. DuckDB refuses parameters a statement does not use."""
    text = mapping.source.sql if sql is None else sql
    values: dict[str, object] = {"as_of": as_of, **mapping.parameters}
    return {k: v for k, v in values.items() if re.search(rf"\${k}\b", text)}


def reference_tables_used(mapping: MappingSpec) -> list[str]:
    """HubSpot reference tables (pipelines, owners) the mapping's SQL joins."""
    text = " ".join([mapping.source.sql, *(f.expr or "" for f in mapping.fields)])
    return [t for t in warehouse.REFERENCE_TABLES if re.search(rf"\b{t}\b", text)]


def _check_reference(con: duckdb.DuckDBPyConnection, mapping: MappingSpec) -> None:
    present = {
        r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    missing = [t for t in reference_tables_used(mapping) if t not in present]
    if missing:
        raise DesiredStateError(
            f"{mapping.path}: source.sql joins {', '.join(missing)} (HubSpot's pipelines and "
            "owners), which no sync has read yet: run a sync with HubSpot access first "
            "(it reads them before planning); shadow runs use the last copy read"
        )


def gate_pass_sql(mapping: MappingSpec, gate: str) -> str:
    """True when a source row passes every rule of ``gate``."""
    return " AND ".join(f"coalesce(({r.check}), false)" for r in mapping.gates[gate])


def gate_reason_sql(mapping: MappingSpec, gate: str) -> str:
    """The reason of the first rule of ``gate`` a source row fails (NULL: it passes)."""
    whens = " ".join(
        f"WHEN NOT coalesce(({r.check}), false) THEN {warehouse.sql_literal(r.reason)}"
        for r in mapping.gates[gate]
    )
    return f"CASE {whens} END"


def field_sql(mapping: MappingSpec, f: FieldSpec) -> str:
    """A field's value over the source row; a gated field is NULL where the gate fails."""
    if f.gate is None:
        return f.source_sql
    return f"CASE WHEN {gate_pass_sql(mapping, f.gate)} THEN ({f.source_sql}) END"


def gated_source_sql(mapping: MappingSpec) -> str:
    """The source query with each gate's reason as a column ``__gate_<name>`` (NULL: passes),
    computed once per row. Gated fields, the non-finite checks and the gate columns read it
    instead of repeating the gate's rules (a free-mail test ran six times per contact: 65% of
    the contacts' desired state). Pass ≡ reason IS NULL: each rule's reason is a literal."""
    if not mapping.gates:
        return mapping.source.sql
    reasons = ", ".join(
        f"{gate_reason_sql(mapping, g)} AS {quote_identifier(GATE_PREFIX + g)}"
        for g in mapping.gates
    )
    return f"SELECT *, {reasons} FROM ({mapping.source.sql}) AS src"


def _gated_field_sql(mapping: MappingSpec, f: FieldSpec) -> str:
    """:func:`field_sql` over :func:`gated_source_sql` (the gate's column, not its rules)."""
    if f.gate is None:
        return f.source_sql
    return f"CASE WHEN {quote_identifier(GATE_PREFIX + f.gate)} IS NULL THEN ({f.source_sql}) END"


def _locate_error(
    con: duckdb.DuckDBPyConnection, mapping: MappingSpec, as_of: dt.date, err: Exception
) -> DesiredStateError:
    """Find which part of the mapping fails, so the error names it."""
    params = _params(mapping, as_of)
    src = mapping.source.sql
    try:
        con.execute(f"SELECT * FROM ({src}) AS src LIMIT 0", params)
    except duckdb.Error as e:
        return DesiredStateError(f"{mapping.path}: source.sql: {e}")
    probes = [("id.column", quote_identifier(mapping.id.column))]
    probes += [
        (f"fields[{i}] ({f.property})", field_sql(mapping, f)) for i, f in enumerate(mapping.fields)
    ]
    probes += [(f"gates.{g}", gate_reason_sql(mapping, g)) for g in mapping.gates]
    probes += [(f"reports.{r.name}", f"({r.when})") for r in mapping.reports]
    probes += [
        (f"associations[{i}].column", quote_identifier(a.column))
        for i, a in enumerate(mapping.associations)
    ]
    probes += [
        (f"match[{i}] ({r.property})", r.source_sql) for i, r in enumerate(mapping.match_rules)
    ]
    for where, expr in probes:
        sql = f"SELECT {expr} FROM ({src}) AS src"
        try:
            con.execute(sql, _params(mapping, as_of, sql)).fetchall()
        except duckdb.Error as e:
            return DesiredStateError(f"{mapping.path}: {where}: {e}")
    return DesiredStateError(f"{mapping.path}: {err}")


def build_desired(
    con: duckdb.DuckDBPyConnection,
    mapping: MappingSpec,
    as_of: dt.date,
    rollout: Rollout | None = None,
) -> DesiredStats:
    """Create table ``desired`` in ``con``'s in-memory database (``con`` has the warehouse views).

    A regular (not TEMP) table, so cursors of the same connection see it."""
    configure_connection(con)
    register_macros(con)
    _check_reference(con, mapping)
    stats = DesiredStats(object_type=mapping.object_type, as_of=as_of)
    raw = [quote_identifier(mapping.id.column)]
    raw += [_gated_field_sql(mapping, f) for f in mapping.fields]
    source = gated_source_sql(mapping)
    try:  # bind only (nothing runs): the source types pick the cheapest canonical SQL
        probe = f"SELECT {', '.join(raw)} FROM ({source}) AS src"
        types = [str(t) for t in con.sql(probe, params=_params(mapping, as_of, probe)).types]
    except duckdb.Error as e:
        raise _locate_error(con, mapping, as_of, e) from e
    id_sql = sql_canonical(mapping.id_form, raw[0], types[0])
    cols = [f"{id_sql} AS {ID_COLUMN}"]
    cols += [
        f"{sql_canonical(f.canonical_form, expr, t)} AS {quote_identifier(f.property)}"
        for f, expr, t in zip(mapping.fields, raw[1:], types[1:], strict=True)
    ]
    cols += [quote_identifier(GATE_PREFIX + g) for g in mapping.gates]
    cols += [
        f"coalesce(({r.when}), false) AS {quote_identifier(REPORT_PREFIX + r.name)}"
        for r in mapping.reports
    ]
    for i, e in enumerate(mapping.events):
        p = f"{EVENT_PREFIX}{i}"
        cols.append(f"coalesce(({e.when}), false) AS {quote_identifier(p)}")
        cols.append(f"CAST(({e.occurrence}) AS VARCHAR) AS {quote_identifier(p + '_occ')}")
        at = f"CAST(({e.occurred_at}) AS TIMESTAMPTZ)" if e.occurred_at else "NULL::TIMESTAMPTZ"
        cols.append(f"{at} AS {quote_identifier(p + '_at')}")
        cols += [
            f"CAST(({r.key}) AS VARCHAR) AS {quote_identifier(f'{p}_src{j}')}"
            for j, r in enumerate(e.source_rows)
        ]
    cols += [
        f"CAST({quote_identifier(a.column)} AS VARCHAR) AS {quote_identifier('__assoc_' + str(i))}"
        for i, a in enumerate(mapping.associations)
    ]
    non_finite = _non_finite_sql(mapping, raw[1:], types[1:])
    cols += [f"{non_finite} AS {NON_FINITE}"] if non_finite else []
    # Adoption's match keys (raw; spokesync.adoption normalises them in SQL).
    cols += [
        f"CAST({r.source_sql} AS VARCHAR) AS {quote_identifier('__match_' + str(i))}"
        for i, r in enumerate(mapping.match_rules)
    ]
    order = [f"{quote_identifier(mapping.as_of_column)} AS __order"] if mapping.as_of_column else []
    where = f"WHERE ({rollout.predicate})" if rollout and rollout.predicate else ""
    create = (
        f"CREATE OR REPLACE TABLE desired_raw AS SELECT {', '.join(cols + order)} "
        f"FROM ({source}) AS src {where}"
    )
    try:
        con.execute(create, _params(mapping, as_of, create))
    except duckdb.Error as e:
        raise _locate_error(con, mapping, as_of, e) from e

    percent = rollout.sql_percent_filter(ID_COLUMN) if rollout else None
    row = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {ID_COLUMN} IS NULL), "
        f"count({ID_COLUMN}) - count(DISTINCT {ID_COLUMN}) FROM desired_raw"
    ).fetchall()[0]
    assert row is not None
    stats.source_rows, stats.rejected_ids, stats.duplicates = (int(v) for v in row)
    keep = [f"{ID_COLUMN} IS NOT NULL"] + ([percent] if percent else [])
    if non_finite:
        keep.append(f"{NON_FINITE} IS NULL")
        row = con.execute(f"SELECT count(*) FROM desired_raw WHERE {NON_FINITE} IS NOT NULL")
        stats.rejected_non_finite = int(row.fetchall()[0][0])
    chosen = rollout is not None and rollout.external_ids is not None
    if chosen:
        assert rollout is not None and rollout.external_ids is not None
        ids = pa.table({"id": pa.array(sorted(rollout.external_ids), pa.string())})
        con.register("rollout_ids_in", ids)
        con.execute("CREATE OR REPLACE TEMP TABLE rollout_ids AS SELECT * FROM rollout_ids_in")
        con.unregister("rollout_ids_in")
        keep.append(f"{ID_COLUMN} IN (SELECT id FROM rollout_ids)")
    dedupe = ""
    rank: str | None = None
    if stats.duplicates:
        stats.duplicate_samples = [
            r[0]
            for r in con.execute(
                f"SELECT {ID_COLUMN} FROM desired_raw WHERE {ID_COLUMN} IS NOT NULL "
                f"GROUP BY {ID_COLUMN} HAVING count(*) > 1 ORDER BY {ID_COLUMN} LIMIT 10"
            ).fetchall()
        ]
        tiebreak = ["__order DESC NULLS LAST"] if mapping.as_of_column else []
        tiebreak += [f"{quote_identifier(f.property)} NULLS LAST" for f in mapping.fields]
        tiebreak += [quote_identifier(GATE_PREFIX + g) + " NULLS FIRST" for g in mapping.gates]
        rank = f"row_number() OVER (PARTITION BY {ID_COLUMN} ORDER BY {', '.join(tiebreak)})"
        dedupe = f"QUALIFY {rank} > 1"  # the rows another row with the same id beats
    internal = (["__order"] if mapping.as_of_column else []) + ([NON_FINITE] if non_finite else [])
    _rejected_table(con, mapping, internal, rank)
    # In place, never a second copy of the whole table (a copy cost ~0.3 µs per record and
    # column each day): delete what is not kept, then drop the internal columns.
    if stats.rejected_ids or stats.rejected_non_finite or percent or chosen:
        con.execute(f"DELETE FROM desired_raw WHERE NOT coalesce(({' AND '.join(keep)}), false)")
    if dedupe:  # among the kept rows, as a QUALIFY after that WHERE would rank them
        con.execute(
            f"DELETE FROM desired_raw WHERE rowid IN (SELECT rowid FROM desired_raw {dedupe})"
        )
    for column in internal:
        con.execute(f"ALTER TABLE desired_raw DROP COLUMN {column}")
    con.execute(f"DROP TABLE IF EXISTS {DESIRED_TABLE}")
    con.execute(f"ALTER TABLE desired_raw RENAME TO {DESIRED_TABLE}")
    row = con.execute(f"SELECT count(*) FROM {DESIRED_TABLE}").fetchall()[0]
    stats.records = int(row[0]) if row else 0
    _gate_and_report_stats(con, mapping, stats)
    return stats


NON_FINITE = "__non_finite"
REJECTED_TABLE = "desired_rejected"
_FLOAT_TYPES = frozenset({"DOUBLE", "FLOAT", "REAL"})


# Source types whose every non-NULL value has a canonical form, per form: no check needed.
_ALWAYS_READABLE: dict[str, frozenset[str]] = {
    "number": frozenset(
        {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT"}
        | {"UINTEGER", "UBIGINT", "UHUGEINT", "BOOLEAN"}
    ),
    "bool": frozenset({"BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT"}),
    "date": frozenset({"DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE"}),
    "datetime": frozenset({"DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE"}),
}
# Forms whose canonical value is NULL only for blank text, whatever the source holds.
_NEVER_VANISH = frozenset({"string", "enumeration", "email"})
_BLANK = "' \t\n\x0b\x0c\r'"


def _shown(expr: str) -> str:
    """SQL: the source value as a reason shows it — JSON-quoted (control characters escaped),
    at most 40 characters."""
    v = f"CAST(({expr}) AS VARCHAR)"
    return (
        f"(CAST(to_json(left({v}, 40)) AS VARCHAR) "
        f"|| CASE WHEN length({v}) > 40 THEN ' (cut)' ELSE '' END)"
    )


def _options_sql(options: list[str]) -> str:
    return "[" + ", ".join(warehouse.sql_literal(o) for o in options) + "]"


def _listed(options: list[str]) -> str:
    shown = ", ".join(options[:6]) + (f", … ({len(options)} in all)" if len(options) > 6 else "")
    return f"one of the field's options ({shown})"


def _non_finite_sql(mapping: MappingSpec, exprs: list[str], types: list[str]) -> str | None:
    """SQL giving why the first unreadable field of a source row cannot be sent (NULL: every
    field can), or None when no field can hold such a value.

    Unreadable: a value present in the source (not NULL, not blank) that HubSpot's property
    type would refuse or that would vanish on the way — text that is no number in a number
    field (``12abc``, ``inf``), a float that is inf or NaN, a date that is no date, ``maybe``
    for a bool, ``https://`` for a domain, an enumeration value that is not among the field's
    ``options``. Such a value is never sent (HubSpot would dead-letter the record) and never
    becomes "no value" (``null_policy: clear`` would clear HubSpot's), nor does it stop the
    whole mapping: its record is rejected, the reason naming the field and the value."""
    whens = []
    tail = ": the record is not sent, HubSpot keeps its values"
    for f, expr, t in zip(mapping.fields, exprs, types, strict=True):
        form, t = f.canonical_form, t.upper()
        canonical_sql = sql_canonical(form, expr, t)
        text = f"trim(CAST(({expr}) AS VARCHAR), {_BLANK})"
        present = f"{text} <> ''"
        holds = f"{warehouse.sql_literal(f'field {f.property} holds ')} || {_shown(expr)}"
        if form in ("enumeration", "enumeration_multi") and f.options:
            opts = _options_sql(list(f.options))
            values = (
                f"[{canonical_sql}]"
                if form == "enumeration"
                else f"string_split({canonical_sql}, ';')"
            )
            test = f"({canonical_sql} IS NOT NULL AND NOT list_has_all({opts}, {values}))"
            why = f", which is not {_listed(list(f.options))}{tail}"
        elif form in _NEVER_VANISH or t in _ALWAYS_READABLE.get(form, ()):
            continue
        elif form == "number" and t in _FLOAT_TYPES:
            test = f"NOT isfinite(({expr}))"
            holds = warehouse.sql_literal(f"field {f.property}")
            why = f" is not a finite number (inf or NaN){tail}"
        elif form == "number" and (t.startswith("DECIMAL") or t == "NULL"):
            continue
        elif form == "number" and t == "VARCHAR":  # numeric text only: 12abc is no number
            test = f"({present} AND NOT regexp_full_match({text}, '{NUMERIC_TEXT}'))"
            why = f", which is not a finite number{tail}"
        else:
            test = f"({present} AND ({canonical_sql}) IS NULL)"
            why = f", which cannot be read as {_FORM_NAMES.get(form, form)}{tail}"
        reason = f"{holds} || {warehouse.sql_literal(why)}"
        whens.append(f"WHEN coalesce({test}, false) THEN {reason}")
    return f"CASE {' '.join(whens)} END" if whens else None


_FORM_NAMES = {
    "bool": "a bool (true/false, yes/no, 1/0)",
    "number": "a number",
    "date": "a date",
    "datetime": "a date and time",
    "domain": "a domain",
    "enumeration_multi": "a list of options",
}


def _rejected_table(
    con: duckdb.DuckDBPyConnection,
    mapping: MappingSpec,
    internal: list[str],
    rank: str | None,
) -> None:
    """Table ``desired_rejected`` (external_id, reason, record): every source row that will
    not be sent, and why — the runner lists them in the state store, never only counts them."""
    empty = warehouse.sql_literal(
        f"the id (column {mapping.id.column!r}) is empty: the record cannot be matched in HubSpot"
    )
    whens = [f"WHEN {ID_COLUMN} IS NULL THEN {empty}"]
    if NON_FINITE in internal:
        whens.append(f"WHEN {NON_FINITE} IS NOT NULL THEN {NON_FINITE}")
    reason = f"CASE {' '.join(whens)} END"
    record = "CAST(to_json(r) AS VARCHAR)"
    sql = (
        f"SELECT {ID_COLUMN} AS external_id, {reason} AS reason, {record} AS record "
        f"FROM desired_raw r WHERE {reason} IS NOT NULL"
    )
    if rank is not None:
        won = "the newest by " + mapping.as_of_column if mapping.as_of_column else "a stable order"
        lost = warehouse.sql_literal(
            f"duplicate id: another source row with this id was kept ({won}); this one is not sent"
        )
        sql += (
            f" UNION ALL SELECT {ID_COLUMN}, {lost}, {record} FROM desired_raw r "
            f"WHERE {ID_COLUMN} IS NOT NULL AND {reason} IS NULL QUALIFY {rank} > 1"
        )
    con.execute(f"CREATE OR REPLACE TABLE {REJECTED_TABLE} AS {sql}")


def _gate_and_report_stats(
    con: duckdb.DuckDBPyConnection, mapping: MappingSpec, stats: DesiredStats
) -> None:
    for g in mapping.gates:
        col = quote_identifier(GATE_PREFIX + g)
        rows = con.execute(
            f"SELECT {ID_COLUMN}, {col}, count(*) OVER () FROM {DESIRED_TABLE} "
            f"WHERE {col} IS NOT NULL ORDER BY {ID_COLUMN} LIMIT {SAMPLES}"
        ).fetchall()
        stats.gated[g] = int(rows[0][2]) if rows else 0
        stats.gate_samples += [(r[0], g, r[1]) for r in rows]
    for r in mapping.reports:
        col = quote_identifier(REPORT_PREFIX + r.name)
        rows = con.execute(
            f"SELECT {ID_COLUMN}, count(*) OVER () FROM {DESIRED_TABLE} WHERE {col} "
            f"ORDER BY {ID_COLUMN} LIMIT {SAMPLES}"
        ).fetchall()
        stats.reported[r.name] = int(rows[0][1]) if rows else 0
        stats.report_samples[r.name] = [x[0] for x in rows]


def gate_failures(
    con: duckdb.DuckDBPyConnection, mapping: MappingSpec, table: str = DESIRED_TABLE
) -> list[tuple[str, str, str]]:
    """Every record failing a gate: (external id, gate, reason), in id order."""
    parts = [
        f"SELECT {ID_COLUMN}, '{g}' AS gate, {quote_identifier(GATE_PREFIX + g)} AS reason "
        f"FROM {table} WHERE {quote_identifier(GATE_PREFIX + g)} IS NOT NULL"
        for g in mapping.gates
    ]
    if not parts:
        return []
    return [
        (str(a), str(b), str(c))
        for a, b, c in con.execute(" UNION ALL ".join(parts) + " ORDER BY 1, 2").fetchall()
    ]


def desired_long_sql(mapping: MappingSpec, table: str = DESIRED_TABLE) -> str:
    """The desired table as (external_id, property, value, null_policy, owner) rows.

    ``skip`` fields with no value are left out: they can never produce a change. The id
    property is included, so a new record is created with it and the snapshot keeps it.
    """
    parts = [
        f"SELECT {ID_COLUMN}, '{mapping.id.property}' AS property, {ID_COLUMN} AS value, "
        f"'skip' AS null_policy, 'warehouse' AS owner FROM {table}"
    ]
    for f in mapping.fields:
        col = quote_identifier(f.property)
        cond = f" WHERE {col} IS NOT NULL" if f.null_policy == "skip" else ""
        parts.append(
            f"SELECT {ID_COLUMN}, '{f.property}', {col}, '{f.null_policy}', '{f.owner}' "
            f"FROM {table}{cond}"
        )
    return "\nUNION ALL\n".join(parts)


def desired_table(
    warehouse_dir: Path, mapping: MappingSpec, as_of: dt.date, rollout: Rollout | None = None
) -> tuple[pa.Table, DesiredStats]:
    """Desired state as an Arrow table (one row per record) — for small data, tools and tests."""
    con = warehouse.connect(Path(warehouse_dir))
    try:
        stats = build_desired(con, mapping, as_of, rollout)
        table = con.sql(f"SELECT * FROM {DESIRED_TABLE} ORDER BY {ID_COLUMN}").to_arrow_table()
    finally:
        con.close()
    return table, stats
