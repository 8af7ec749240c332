"""Which warehouse tables a mapping reads, from DuckDB's own parser.

The mapping's query (with every field expression projected over it, exactly as
:mod:`spokesync.desired` runs it) is parsed with ``json_serialize_sql``: parse only, so nothing
is bound, no file is touched and no warehouse table has to exist. The syntax tree is walked for
base-table references; CTE names are skipped within the scope DuckDB gives them (a CTE sees the
CTEs defined before it, a recursive CTE also sees itself, the query body sees them all), so
``WITH invoices AS (SELECT … FROM invoices)`` still reads the table ``invoices``.

Names are lower-cased (DuckDB identifiers are case-insensitive) and the default ``main`` schema
(and ``memory`` catalog) are dropped, so ``main.Accounts`` and ``accounts`` are one table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

import duckdb

from spokesync.mapping.loader import MappingError
from spokesync.mapping.spec import MappingSpec, quote_identifier

_DEFAULT_PARTS = frozenset({"main", "memory"})


def _cte_names(node: dict) -> list[tuple[str, dict]]:
    cte_map = node.get("cte_map")
    if not isinstance(cte_map, dict):
        return []
    return [(e["key"].lower(), e["value"]) for e in cte_map.get("map") or []]


def _walk(node: object, scope: frozenset[str], out: set[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, scope, out)
        return
    if not isinstance(node, dict):
        return
    ctes = _cte_names(node)
    if ctes:
        visible = scope
        for name, value in ctes:
            body = value.get("query_node") if isinstance(value, dict) else None
            inner = visible
            if isinstance(body, dict) and body.get("type") == "RECURSIVE_CTE_NODE":
                inner = visible | {name}
            _walk(body, inner, out)
            visible = visible | {name}
        scope = visible
    if node.get("type") == "BASE_TABLE":
        parts = [
            str(p).lower()
            for p in (node.get("catalog_name"), node.get("schema_name"), node.get("table_name"))
            if p
        ]
        while len(parts) > 1 and parts[0] in _DEFAULT_PARTS:
            parts.pop(0)
        name = ".".join(parts)
        if not (len(parts) == 1 and name in scope):
            out.add(name)
    for key, value in node.items():
        if key == "cte_map":
            continue  # walked above, each CTE body in its own scope
        _walk(value, scope, out)


def tables_in_sql(sql: str) -> frozenset[str]:
    """Base tables one SELECT reads (CTE names excluded). Raises ``ValueError`` on bad SQL."""
    con = duckdb.connect()
    try:
        row = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    finally:
        con.close()
    tree = json.loads(row[0]) if row else {}
    if tree.get("error"):
        raise ValueError(f"{tree.get('error_type')}: {tree.get('error_message')}")
    out: set[str] = set()
    _walk(tree.get("statements", []), frozenset(), out)
    return frozenset(out)


def _projection(spec: MappingSpec) -> Iterable[str]:
    yield quote_identifier(spec.id.column)
    yield from (f.source_sql for f in spec.fields)
    yield from (quote_identifier(a.column) for a in spec.associations)


def tables_read(spec: MappingSpec) -> frozenset[str]:
    """The warehouse tables ``spec`` reads: its source query plus its field expressions (an
    ``expr`` may hold a subquery). Raises :class:`MappingError` naming the file."""
    sql = f"SELECT {', '.join(_projection(spec))} FROM ({spec.source.sql}) AS src"
    try:
        return tables_in_sql(sql)
    except ValueError as e:
        raise MappingError(f"{spec.path}: source.sql: {e}") from None


def _column_refs(node: object, out: set[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _column_refs(item, out)
    elif isinstance(node, dict):
        if node.get("class") == "COLUMN_REF" and node.get("column_names"):
            out.add(str(node["column_names"][-1]).lower())
        for value in node.values():
            _column_refs(value, out)


def columns_in_expr(expr: str) -> frozenset[str]:
    """Column names an SQL expression refers to (``round(mrr, 2)`` → ``{"mrr"}``)."""
    con = duckdb.connect()
    try:
        row = con.execute("SELECT json_serialize_sql(?)", [f"SELECT {expr}"]).fetchone()
    finally:
        con.close()
    tree = json.loads(row[0]) if row else {}
    if tree.get("error"):
        raise ValueError(f"{tree.get('error_type')}: {tree.get('error_message')}")
    out: set[str] = set()
    _column_refs(tree.get("statements", []), out)
    return frozenset(out)


def property_sources(
    spec: MappingSpec, table_columns: Mapping[str, Iterable[str]]
) -> dict[str, list[tuple[str, str]]]:
    """Warehouse ``(table, column)`` pairs each HubSpot property is fed from, for column lineage.

    A property's source columns (its ``column``, or the columns its ``expr`` names) are matched
    by name against the columns of the tables the mapping reads (``table_columns``: the source
    contract). A column the query computes under a new name (an aggregate such as
    ``active_users_30d``) has no warehouse column of that name and maps to nothing; a join key
    such as ``account_id`` maps to every table read that has it."""
    read = tables_read(spec)
    by_table = {t: {c.lower() for c in cols} for t, cols in table_columns.items() if t in read}

    def sources(cols: Iterable[str]) -> list[tuple[str, str]]:
        return sorted((t, c) for c in cols for t, have in by_table.items() if c in have)

    out = {spec.id.property: sources([spec.id.column.lower()])}
    for f in spec.fields:
        cols = [f.column.lower()] if f.column else sorted(columns_in_expr(f.expr or "NULL"))
        out[f.property] = sources(cols)
    return out
