"""Value history: every value HubSpot confirmed for a managed property, with what it replaced.

One row per (record, property) of each confirmed write, written in the same transaction as the
snapshot write-through (see :mod:`spokesync.state.snapshot`), so the history never holds a
write the snapshot lacks or the other way round. ``old_value`` is what the snapshot held before
(``NULL``: no value, or a record the snapshot did not know); values are canonical strings.
It answers "who set this property to that, when, in which run, in which HubSpot request".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from spokesync.state.connection import Connection, now

DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS value_history (
        object_type VARCHAR NOT NULL,
        external_id VARCHAR NOT NULL,
        hubspot_id VARCHAR,
        property VARCHAR NOT NULL,
        old_value VARCHAR,          -- what the snapshot held before (NULL: nothing known)
        new_value VARCHAR,          -- what HubSpot confirmed (canonical; NULL = cleared)
        run_id VARCHAR,
        as_of DATE,
        correlation_id VARCHAR,     -- HubSpot's correlation id of the batch that confirmed it
        event_id VARCHAR,           -- the canonical event that caused the write, if any
        recorded_at TIMESTAMPTZ NOT NULL
    )""",
)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    object_type: str
    external_id: str
    hubspot_id: str | None
    property: str
    old_value: str | None
    new_value: str | None
    run_id: str | None
    as_of: dt.date | None
    correlation_id: str | None
    event_id: str | None
    recorded_at: dt.datetime


def record(con: duckdb.DuckDBPyConnection, object_type: str, run_id: str) -> None:
    """Append the rows of the write-through's ``confirmed`` table (unique per record and
    property, with ``old_value`` read from the snapshot before it is replaced); call inside
    the write-through transaction."""
    con.execute(
        "INSERT INTO value_history SELECT $ot, external_id, hubspot_id, property, old_value, "
        "value, $run, as_of, correlation_id, event_id, $now FROM confirmed",
        {"ot": object_type, "run": run_id, "now": now()},
    )


class HistoryStore:
    """Reads of the value history (its writes happen in the snapshot's write-through)."""

    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def entries(
        self,
        object_type: str,
        external_id: str | None = None,
        property: str | None = None,
        limit: int = 1000,
    ) -> list[HistoryEntry]:
        """History rows of one object type (optionally one record / property), oldest first."""
        with self._c.connection() as con:
            rows = con.execute(
                "SELECT object_type, external_id, hubspot_id, property, old_value, new_value, "
                "run_id, as_of, correlation_id, event_id, recorded_at FROM value_history "
                "WHERE object_type = $ot AND ($ext IS NULL OR external_id = $ext) "
                "AND ($prop IS NULL OR property = $prop) "
                "ORDER BY recorded_at, external_id, property, rowid LIMIT $lim",
                {"ot": object_type, "ext": external_id, "prop": property, "lim": limit},
            ).fetchall()
        return [HistoryEntry(*r) for r in rows]

    def last_confirmed_at(self, object_type: str, run_id: str) -> dt.datetime | None:
        """When the run's last confirmed write of ``object_type`` was recorded (None: none)."""
        with self._c.connection() as con:
            row = con.execute(
                "SELECT max(recorded_at) FROM value_history WHERE object_type = $ot "
                "AND run_id = $run",
                {"ot": object_type, "run": run_id},
            ).fetchall()[0]
        return row[0]

    def count(self, object_type: str | None = None) -> int:
        with self._c.connection() as con:
            row = con.execute(
                "SELECT count(*) FROM value_history WHERE $ot IS NULL OR object_type = $ot",
                {"ot": object_type},
            ).fetchall()[0]
        return int(row[0])
