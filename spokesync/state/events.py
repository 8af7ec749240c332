"""The ``canonical_events`` table: canonical events (:mod:`spokesync.events`) as recorded.

An event is recorded once (by its deterministic id) and never rewritten. Recording an event for
writes of a run also links those value-history rows (same run, record, properties) to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from spokesync.events import CanonicalEvent
from spokesync.state.connection import Connection, now

DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS canonical_events (
        event_id VARCHAR NOT NULL,
        type VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        object_type VARCHAR NOT NULL,
        external_id VARCHAR NOT NULL,
        occurred_at TIMESTAMPTZ,
        as_of DATE,
        run_id VARCHAR,
        payload JSON NOT NULL,      -- the whole event, as its versioned JSON schema says
        recorded_at TIMESTAMPTZ NOT NULL
    )""",
)


class EventStore:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def record(self, events: Iterable[CanonicalEvent], *, confirmed_only: bool = True) -> int:
        """Record events not seen before; link this run's value history to them. With
        ``confirmed_only``, an event is recorded only if HubSpot confirmed at least one of its
        properties for the record in the event's run. Returns how many were new."""
        new = 0
        stamp = now()
        with self._c.transaction() as con:
            for e in events:
                ext = e.external_ids[e.object_type]
                params = {
                    "ot": e.object_type,
                    "ext": ext,
                    "run": e.run_id,
                    "props": list(e.properties),
                    "id": e.event_id,
                }
                if confirmed_only and e.properties:
                    hit = con.execute(
                        "SELECT 1 FROM value_history WHERE object_type = $ot AND "
                        "external_id = $ext AND run_id = $run AND list_contains($props, property) "
                        "LIMIT 1",
                        {k: params[k] for k in ("ot", "ext", "run", "props")},
                    ).fetchall()
                    if not hit:
                        continue
                rows = con.execute(
                    "INSERT INTO canonical_events SELECT $id, $type, $version, $ot, $ext, $at, "
                    "$as_of, $run, $payload, $now WHERE NOT EXISTS "
                    "(SELECT 1 FROM canonical_events WHERE event_id = $id) RETURNING 1",
                    {
                        **{k: params[k] for k in ("id", "ot", "ext", "run")},
                        "type": e.type,
                        "version": e.version,
                        "at": e.occurred_at,
                        "as_of": e.as_of,
                        "payload": e.model_dump_json(),
                        "now": stamp,
                    },
                ).fetchall()
                new += len(rows)
                if e.properties:
                    con.execute(
                        "UPDATE value_history SET event_id = $id WHERE object_type = $ot AND "
                        "external_id = $ext AND run_id = $run AND list_contains($props, property) "
                        "AND event_id IS NULL",
                        params,
                    )
        return new

    def events(
        self, object_type: str | None = None, external_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Recorded events (payloads), oldest first."""
        with self._c.connection() as con:
            rows = con.execute(
                "SELECT payload FROM canonical_events WHERE ($ot IS NULL OR object_type = $ot) "
                "AND ($ext IS NULL OR external_id = $ext) ORDER BY recorded_at, event_id",
                {"ot": object_type, "ext": external_id},
            ).fetchall()
        return [json.loads(r[0]) if isinstance(r[0], str) else r[0] for r in rows]

    def counts(self) -> dict[str, int]:
        with self._c.connection() as con:
            return dict(
                con.execute(
                    "SELECT type, count(*) FROM canonical_events GROUP BY type ORDER BY type"
                ).fetchall()
            )
