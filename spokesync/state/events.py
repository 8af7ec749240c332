"""The ``canonical_events`` table: canonical events (:mod:`spokesync.events`) as recorded.

An event is recorded once (by its deterministic id) and never rewritten. Recording an event for
writes of a run also links those value-history rows (same run, record, properties) to it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from typing import Any

import duckdb
import pyarrow as pa

from spokesync.events import CanonicalEvent
from spokesync.state.connection import Connection, now

EVENT_CHUNK = 20_000  # events built, serialised and recorded at a time

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


# One chunk as it is copied in (the columns of ``EventStore._record_chunk``'s Arrow table).
EVENTS_IN_DDL = (
    "CREATE OR REPLACE TEMP TABLE events_in (ord BIGINT, event_id VARCHAR, type VARCHAR, "
    "version INTEGER, ot VARCHAR, ext VARCHAR, occurred VARCHAR, as_of DATE, run VARCHAR, "
    "payload VARCHAR, props VARCHAR[])"
)


class EventStore:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def record(
        self,
        events: Iterable[CanonicalEvent],
        *,
        confirmed_only: bool = True,
        chunk: int = EVENT_CHUNK,
    ) -> int:
        """Record events not seen before; link this run's value history to them. With
        ``confirmed_only``, an event is recorded only if HubSpot confirmed at least one of its
        properties for the record in the event's run. Returns how many were new.

        Set-based (one statement per step, not three per event), ``chunk`` events at a time in
        one transaction, so a first sync's hundreds of thousands of events are never all held
        in Python: among repeats of an id the first wins (a later chunk finds it recorded), and
        a history row goes to the first event (in the order given) that explains it (a later
        chunk only claims rows no earlier event claimed)."""
        it = iter(events)
        new = 0
        with self._c.transaction() as con:
            while batch := list(itertools.islice(it, chunk)):
                new += self._record_chunk(con, batch, confirmed_only)
        return new

    @staticmethod
    def _record_chunk(
        con: duckdb.DuckDBPyConnection, batch: list[CanonicalEvent], confirmed_only: bool
    ) -> int:
        table = pa.table(
            {
                "ord": pa.array(range(len(batch)), pa.int64()),
                "event_id": [e.event_id for e in batch],
                "type": [e.type for e in batch],
                "version": pa.array([e.version for e in batch], pa.int32()),
                "ot": [e.object_type for e in batch],
                "ext": [e.external_ids[e.object_type] for e in batch],
                # text, cast in SQL: a naive time means the session's zone, as a parameter did
                "occurred": [
                    None if e.occurred_at is None else e.occurred_at.isoformat() for e in batch
                ],
                "as_of": pa.array([e.as_of for e in batch], pa.date32()),
                "run": [e.run_id for e in batch],
                "payload": [e.model_dump_json() for e in batch],
                "props": pa.array([list(e.properties) for e in batch], pa.list_(pa.string())),
            }
        )
        # Copied in, not registered: DuckDB keeps a registered Arrow table referenced until
        # the transaction ends, so every chunk of a first sync (its JSON payloads) stayed in
        # memory until the finish committed (184 MB of Arrow at 300k contacts).
        con.execute(EVENTS_IN_DDL)
        con.from_arrow(table).insert_into("events_in")
        con.execute(
            "CREATE OR REPLACE TEMP TABLE events_ok AS SELECT * FROM events_in e "
            "WHERE NOT $confirmed OR len(e.props) = 0 OR EXISTS (SELECT 1 FROM "
            "value_history v WHERE v.object_type = e.ot AND v.external_id = e.ext AND "
            "v.run_id = e.run AND list_contains(e.props, v.property))",
            {"confirmed": confirmed_only},
        )
        (new,) = con.execute(
            "INSERT INTO canonical_events SELECT event_id, type, version, ot, ext, "
            "CAST(occurred AS TIMESTAMPTZ), as_of, run, payload, $now FROM (SELECT *, "
            "row_number() OVER (PARTITION BY event_id ORDER BY ord) AS n FROM events_ok) "
            "WHERE n = 1 AND event_id NOT IN (SELECT event_id FROM canonical_events)",
            {"now": now()},
        ).fetchone() or (0,)
        con.execute(
            "UPDATE value_history SET event_id = m.event_id FROM (SELECT ot, ext, run, "
            "prop, arg_min(event_id, ord) AS event_id FROM (SELECT ot, ext, run, "
            "unnest(props) AS prop, event_id, ord FROM events_ok) GROUP BY ALL) m "
            "WHERE value_history.object_type = m.ot AND value_history.external_id = "
            "m.ext AND value_history.run_id = m.run AND value_history.property = m.prop "
            "AND value_history.event_id IS NULL"
        )
        con.execute("DROP TABLE events_ok")
        con.execute("DROP TABLE events_in")
        return int(new)

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
