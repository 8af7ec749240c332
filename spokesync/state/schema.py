"""The state store's schema: every concept module's ``DDL``, applied on each connection.

No primary keys or indexes: the snapshot holds one row per (object type, external id, property)
and can reach tens of millions of rows, where an ART index would cost more memory than the
table. The store keeps rows unique itself (delete-then-insert inside one transaction).

A new concept gets its own module with a ``DDL`` tuple, listed in ``MODULES`` here.
"""

from __future__ import annotations

import duckdb

from spokesync.state import (
    associations,
    completeness,
    cursors,
    dead_letters,
    events,
    history,
    list_memberships,
    matches,
    merged,
    modified,
    rejected,
    runs,
    snapshot,
    task_ledger,
    verified_ranges,
)

SCHEMA_VERSION = 3

MODULES = (
    snapshot,
    history,
    dead_letters,
    runs,
    associations,
    rejected,
    matches,
    merged,
    cursors,
    modified,
    verified_ranges,
    task_ledger,
    events,
    list_memberships,
    completeness,
)

DDL: tuple[str, ...] = tuple(stmt for module in MODULES for stmt in module.DDL)


def apply(con: duckdb.DuckDBPyConnection) -> None:
    """Create missing tables; build what a store from an older version lacks."""
    had_fingerprints = bool(
        con.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_name = 'snapshot_record'"
        ).fetchall()
    )
    for stmt in DDL:
        con.execute(stmt)
    if not had_fingerprints:  # a store from before fingerprints: build them once
        snapshot.rebuild_record_fingerprints(con, None)
