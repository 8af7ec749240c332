"""Planted mess: bad rows inserted into generated files, each recorded in the manifest.

A planted *quarantine* case is a corrupted copy of a real row, inserted at a random position
(a duplicate always after its original), so every real record still lands cleanly and the
sample stays referentially consistent. A planted *normalised* case changes a real row's value
into a messy but fixable form (mixed-case email with spaces, a domain given as a URL).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# kind -> the check the ingestion must report for it (the name before any "(...)").
EXPECTED_CHECK: dict[str, str] = {
    "missing_key": "not_nullable",
    "duplicate_row": "superseded",
    "unknown_enum": "isin",
    "unknown_currency": "isin",
    "negative_number": "greater_than_or_equal_to",
    "zero_quantity": "greater_than_or_equal_to",
    "unparseable_date": "parse",
    "invalid_email": "valid_email",
    "out_of_range_date": "in_range",
    "truncated_line": "parse_json",
    "missing_column": "column_in_dataframe",
    "extra_column": "schema_drift",
    "email_case": "normalised",
    "domain_url": "normalised",
}


@dataclass(frozen=True, slots=True)
class Planted:
    source: str
    partition: str  # YYYY-MM-DD, or "master"
    file: str  # relative to the landing root
    row: int | None  # CSV/JSONL line number (header = line 1), parquet row index; None = file
    kind: str
    column: str | None
    expected_check: str
    outcome: str  # quarantined | normalised | drift

    def to_dict(self) -> dict[str, Any]:
        # not dataclasses.asdict: its deep copy cost ~35 µs per entry (1 s per 100k accounts)
        return {f: getattr(self, f) for f in _PLANTED_FIELDS}


_PLANTED_FIELDS = tuple(f.name for f in fields(Planted))

# Per source: quarantine kind -> (column, corrupt(value) -> bad value)
Corruptor = Callable[[Any], Any]


def _bad_date(_: Any) -> str:
    return "2026-02-30T25:61:00Z"


QUARANTINE_KINDS: dict[str, dict[str, tuple[str, Corruptor]]] = {
    "accounts": {
        "missing_key": ("account_id", lambda v: None),
        "duplicate_row": ("account_id", lambda v: v),
        "unknown_enum": ("industry", lambda v: "SPACE_MINING"),
        "negative_number": ("employee_count", lambda v: "-12"),
        "unparseable_date": ("created_at", _bad_date),
    },
    "firmographics": {
        "missing_key": ("domain", lambda v: None),
        "duplicate_row": ("domain", lambda v: v),
        "negative_number": ("employees", lambda v: "-12"),
        "unparseable_date": ("updated_at", _bad_date),
    },
    "users": {
        "missing_key": ("user_id", lambda v: None),
        "duplicate_row": ("user_id", lambda v: v),
        "unknown_enum": ("role", lambda v: "superuser"),
        "invalid_email": ("email", lambda v: str(v).replace("@", ".at.")),
        "unparseable_date": ("updated_at", lambda v: "yesterday"),
    },
    "product_usage": {
        "missing_key": ("event_id", lambda v: None),
        "duplicate_row": ("event_id", lambda v: v),
        "unknown_enum": ("event_type", lambda v: "logout"),
        "out_of_range_date": ("occurred_at", lambda v: v + dt.timedelta(days=3)),
        "zero_quantity": ("quantity", lambda v: 0),
    },
    "invoices": {
        "missing_key": ("invoice_id", lambda v: None),
        "duplicate_row": ("invoice_id", lambda v: v),
        "negative_number": ("amount", lambda v: "-" + str(v)),
        "unknown_currency": ("currency", lambda v: "XYZ"),
        "unparseable_date": ("invoice_date", lambda v: "31/02/2026"),
        "unknown_enum": ("status", lambda v: "refunded"),
    },
    "subscriptions": {
        "missing_key": ("subscription_id", lambda v: None),
        "duplicate_row": ("subscription_id", lambda v: v),
        "unknown_enum": ("plan", lambda v: "platinum"),
        "unknown_currency": ("currency", lambda v: "BTC"),
        "negative_number": ("mrr", lambda v: "-" + str(v)),
        "unparseable_date": ("started_on", lambda v: "not a date"),
    },
    "support_tickets": {
        "missing_key": ("ticket_id", lambda v: None),
        "duplicate_row": ("ticket_id", lambda v: v),
        "unknown_enum": ("priority", lambda v: "critical"),
        "invalid_email": ("requester_email", lambda v: str(v).split("@")[0]),
        "unparseable_date": ("created_at", lambda v: "32/01/2026 10:00"),
    },
}

# Per source: normalised kind -> the column it makes messy
NORMALISED_KINDS: dict[str, dict[str, str]] = {
    "accounts": {"domain_url": "domain", "email_case": "owner_email"},
    "users": {"email_case": "email"},
    "support_tickets": {"email_case": "requester_email"},
}


def messy_email(values: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise("  ", pc.utf8_swapcase(values), " ", "")


def messy_domain(values: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise("https://www.", pc.utf8_capitalize(values), "/about", "")


def plant(
    table: pa.Table,
    *,
    source: str,
    partition: str,
    file: str,
    rate: float,
    rng: np.random.Generator,
    cycle_offset: int,
    first_row_number: int,
    row_base: int = 0,
) -> tuple[pa.Table, list[Planted]]:
    """Return ``table`` with planted cases, and the manifest entries for them.

    ``first_row_number`` is the number of the first data row in the file (2 for CSV, 1 for
    JSONL, 0 for parquet) and ``row_base`` the number of data rows already written before this
    table (for files written in chunks).
    """
    n = table.num_rows
    entries: list[Planted] = []
    if n == 0 or rate <= 0:
        return table, entries
    q_kinds = list(QUARANTINE_KINDS.get(source, {}))
    n_kinds = list(NORMALISED_KINDS.get(source, {}))
    n_q = int(round(n * rate))
    n_n = int(round(n * rate)) if n_kinds else 0
    n_n = min(n_n, n // 3)
    n_q = min(n_q, n // 3)
    chosen = rng.choice(n, size=n_q + n_n, replace=False) if n_q + n_n else np.array([], int)
    norm_rows, copy_rows = np.sort(chosen[:n_n]), chosen[n_n:]

    # Normalised cases: mutate real rows in place (vectorised per kind).
    if n_n:
        kinds = [n_kinds[(cycle_offset + i) % len(n_kinds)] for i in range(n_n)]
        for kind in set(kinds):
            column = NORMALISED_KINDS[source][kind]
            rows = np.array([r for r, k in zip(norm_rows, kinds, strict=True) if k == kind])
            col = table.column(column).combine_chunks()
            mask = np.zeros(n, dtype=bool)
            mask[rows] = True
            maker = messy_domain if kind == "domain_url" else messy_email
            new = pc.if_else(pa.array(mask), maker(col), col)
            table = table.set_column(table.schema.get_field_index(column), column, new)
            for r in rows:
                entries.append(
                    Planted(
                        source, partition, file, int(r), kind, column, "normalised", "normalised"
                    )
                )

    if not n_q:
        return table, _renumber(entries, np.arange(n), first_row_number, row_base)

    # Quarantine cases: corrupted copies of real rows, inserted at random positions.
    kinds = [q_kinds[(cycle_offset + i) % len(q_kinds)] for i in range(n_q)]
    copies = table.take(pa.array(copy_rows)).to_pylist()
    for rec, kind in zip(copies, kinds, strict=True):
        column, corrupt = QUARANTINE_KINDS[source][kind]
        rec[column] = corrupt(rec[column])
    copy_table = pa.Table.from_pylist(copies, schema=_loose_schema(table.schema))
    combined = pa.concat_tables([table.cast(copy_table.schema), copy_table])
    # Sort key: real row i at i; a copy goes before real row `slot` (after its original
    # when it is a duplicate, so that the original is the one that is kept).
    slots = np.empty(n_q, dtype=np.float64)
    for j, (orig, kind) in enumerate(zip(copy_rows, kinds, strict=True)):
        lo = int(orig) + 1 if kind == "duplicate_row" else 0
        slots[j] = rng.integers(lo, n + 1) - 0.5
    order = np.argsort(np.concatenate([np.arange(n, dtype=np.float64), slots]), kind="stable")
    position = np.empty(n + n_q, dtype=np.int64)
    position[order] = np.arange(n + n_q)
    entries = _renumber(entries, position[:n], first_row_number, row_base)
    for j, kind in enumerate(kinds):
        column, _ = QUARANTINE_KINDS[source][kind]
        entries.append(
            Planted(
                source,
                partition,
                file,
                int(position[n + j]) + first_row_number + row_base,
                kind,
                column,
                EXPECTED_CHECK[kind],
                "quarantined",
            )
        )
    return combined.take(pa.array(order)), entries


def _renumber(
    entries: list[Planted], position: np.ndarray, first_row_number: int, row_base: int
) -> list[Planted]:
    out = []
    for e in entries:
        row = int(position[e.row]) + first_row_number + row_base  # type: ignore[index]
        out.append(Planted(**{**e.to_dict(), "row": row}))
    return out


def _loose_schema(schema: pa.Schema) -> pa.Schema:
    """Corrupted copies may hold a null key or a value of another type: make fields nullable;
    typed (parquet) fields keep their type because their corruptions keep the type."""
    return pa.schema([pa.field(f.name, f.type, nullable=True) for f in schema])
