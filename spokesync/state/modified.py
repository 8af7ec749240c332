"""The last modification time we know per HubSpot record: HubSpot's ``updatedAt`` of each of
our confirmed writes, and the last-modified date of each record an incremental refresh read.

The incremental refresh uses them so it need not read back what spokesync itself wrote (nor
what it already read): a stretch of time in which HubSpot's search counts exactly the records
we know were last modified there holds nothing new (see :mod:`spokesync.sync.own_window`). Rows
older than the refresh cursor minus its overlap can never be asked for again and are pruned by
each refresh.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import duckdb
import pyarrow as pa

from spokesync.changes import ConfirmedWrite
from spokesync.state.connection import Connection

DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS known_modified (
        object_type VARCHAR NOT NULL,
        hubspot_id VARCHAR NOT NULL,
        modified_ms BIGINT NOT NULL,  -- epoch ms of the record's last-modified date
        source VARCHAR NOT NULL       -- 'write' (our confirmed write) | 'read' (a refresh)
    )""",
)


def _insert(
    con: duckdb.DuckDBPyConnection, rows: list[tuple[str, str, str | int]], source: str
) -> int:
    if not rows:
        return 0
    table = pa.table(
        {
            "object_type": [r[0] for r in rows],
            "hubspot_id": [r[1] for r in rows],
            "stamp": [str(r[2]) for r in rows],
        }
    )
    con.register("known_modified_rows", table)
    try:
        con.execute(
            "INSERT INTO known_modified SELECT object_type, hubspot_id, "
            "coalesce(try_cast(stamp AS BIGINT), epoch_ms(try_cast(stamp AS TIMESTAMPTZ))) "
            "AS ms, $source FROM known_modified_rows WHERE ms IS NOT NULL",
            {"source": source},
        )
    finally:
        con.unregister("known_modified_rows")
    return len(rows)


def record_writes(con: duckdb.DuckDBPyConnection, writes: Iterable[ConfirmedWrite]) -> int:
    """Save the ``updatedAt`` of confirmed writes inside the caller's transaction."""
    rows = [(w.object_type, w.hubspot_id, w.updated_at) for w in writes if w.updated_at]
    return _insert(con, rows, "write")  # type: ignore[arg-type]


class KnownModifiedStore:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def record_reads(self, object_type: str, seen: Iterable[tuple[str, int]]) -> int:
        """Save (HubSpot id, last-modified ms) of records a refresh read."""
        rows = [(object_type, hid, ms) for hid, ms in seen]
        with self._c.transaction() as con:
            return _insert(con, rows, "read")  # type: ignore[arg-type]

    def since(
        self, object_type: str, since_ms: int, skip: Sequence[tuple[int, int]] = ()
    ) -> tuple[list[str], list[int]]:
        """(HubSpot ids, modified ms) of records whose last known modification is at or
        after ``since_ms`` and in none of the ``skip`` ranges (inclusive), oldest first."""
        query = (
            "SELECT hubspot_id, max(modified_ms) AS ms FROM known_modified "
            "WHERE object_type = $ot GROUP BY hubspot_id HAVING ms >= $since"
        )
        params: dict[str, object] = {"ot": object_type, "since": since_ms}
        if skip:
            query += (
                " AND NOT EXISTS (SELECT 1 FROM (SELECT unnest($lo) AS lo, unnest($hi) AS hi) r "
                "WHERE max(modified_ms) BETWEEN r.lo AND r.hi)"
            )
            params.update(lo=[int(lo) for lo, _ in skip], hi=[int(hi) for _, hi in skip])
        with self._c.connection() as con:
            rows = con.execute(query + " ORDER BY ms, hubspot_id", params).fetchall()
        return [r[0] for r in rows], [int(r[1]) for r in rows]

    def prune(self, object_type: str, before_ms: int) -> None:
        """Forget times no refresh window can reach any more."""
        with self._c.transaction() as con:
            con.execute(
                "DELETE FROM known_modified WHERE object_type = $ot AND modified_ms < $before",
                {"ot": object_type, "before": before_ms},
            )
