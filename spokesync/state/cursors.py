"""Refresh cursors: per object type, how far the snapshot has read HubSpot's modifications.

A full refresh sets the cursor to the moment it started reading; an incremental refresh reads
the records modified since ``cursor − overlap`` and moves the cursor to the newest modification
date it saw (see :mod:`spokesync.sync.refresh`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from spokesync.state.connection import Connection, now

DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS refresh_cursor (
        object_type VARCHAR NOT NULL,
        cursor_ms BIGINT NOT NULL,  -- epoch ms: modifications up to here are in the snapshot
        last_full_at TIMESTAMPTZ,
        last_incremental_at TIMESTAMPTZ,
        updated_at TIMESTAMPTZ NOT NULL
    )""",
)


@dataclass(frozen=True, slots=True)
class RefreshCursor:
    object_type: str
    cursor_ms: int
    last_full_at: dt.datetime | None
    last_incremental_at: dt.datetime | None

    @property
    def cursor(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.cursor_ms / 1000, dt.UTC)


class CursorStore:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def get(self, object_type: str) -> RefreshCursor | None:
        with self._c.connection() as con:
            row = con.execute(
                "SELECT object_type, cursor_ms, last_full_at, last_incremental_at "
                "FROM refresh_cursor WHERE object_type = $ot",
                {"ot": object_type},
            ).fetchone()
        return RefreshCursor(*row) if row else None

    def all(self) -> list[RefreshCursor]:
        with self._c.connection() as con:
            rows = con.execute(
                "SELECT object_type, cursor_ms, last_full_at, last_incremental_at "
                "FROM refresh_cursor ORDER BY object_type"
            ).fetchall()
        return [RefreshCursor(*r) for r in rows]

    def advance(self, object_type: str, cursor_ms: int, *, full: bool) -> None:
        """Set the cursor after a refresh (a full one may move it back: it read everything)."""
        stamp = now()
        with self._c.transaction() as con:
            old = con.execute(
                "SELECT cursor_ms, last_full_at, last_incremental_at FROM refresh_cursor "
                "WHERE object_type = $ot",
                {"ot": object_type},
            ).fetchone()
            con.execute("DELETE FROM refresh_cursor WHERE object_type = $ot", {"ot": object_type})
            if old is not None and not full:
                cursor_ms = max(cursor_ms, int(old[0]))
            con.execute(
                "INSERT INTO refresh_cursor VALUES ($ot, $c, $full, $inc, $now)",
                {
                    "ot": object_type,
                    "c": cursor_ms,
                    "full": stamp if full else (old[1] if old else None),
                    "inc": stamp if not full else (old[2] if old else None),
                    "now": stamp,
                },
            )
