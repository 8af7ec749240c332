"""Dead letters: records HubSpot rejected or that exhausted their retries, kept for replay.

A letter is ``open`` until it is re-sent (``replayed``) or a later write of the record is
confirmed (``resolved``, by the snapshot's write-through).

**Parked letters.** A record HubSpot rejected for a permanent reason (validation, a conflict:
any category not in :data:`TRANSIENT_CATEGORIES`) is *parked* while its letter is open: the
sync does not send it again until its desired values differ from the rejected payload, or a
person replays it (``spokesync state replay`` marks the letter ``replayed`` and re-plans the
record from the current desired state). Transient failures — retries exhausted, the daily
limit, a 2xx that confirmed nothing — are not parked: the next run sends them again by itself
and the letter counts the attempts.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import duckdb

from spokesync.changes import DeadLetter, RecordChange
from spokesync.state.connection import Connection, now

TRANSIENT_CATEGORIES = frozenset(
    {"RETRIES_EXHAUSTED", "RATE_LIMITED", "DAILY_LIMIT", "NOT_CONFIRMED"}
)
"""Failures that say nothing about the record itself: sent again on the next run."""


def is_permanent(category: str | None) -> bool:
    """A rejection the same payload would meet again (the record is parked)."""
    return category not in TRANSIENT_CATEGORIES


DDL: tuple[str, ...] = (
    "CREATE SEQUENCE IF NOT EXISTS dead_letter_id_seq",
    """CREATE TABLE IF NOT EXISTS dead_letter (
        letter_id BIGINT DEFAULT nextval('dead_letter_id_seq'),
        object_type VARCHAR NOT NULL,
        external_id VARCHAR NOT NULL,
        payload JSON,
        category VARCHAR,
        message VARCHAR,
        correlation_id VARCHAR,
        attempts INTEGER NOT NULL,
        first_seen TIMESTAMPTZ NOT NULL,
        last_seen TIMESTAMPTZ NOT NULL,
        state VARCHAR NOT NULL,     -- 'open' | 'replayed' | 'resolved'
        run_id VARCHAR,
        as_of DATE
    )""",
)


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """A dead-letter row as stored."""

    letter_id: int
    object_type: str
    external_id: str
    payload: dict[str, Any]
    category: str | None
    message: str | None
    correlation_id: str | None
    attempts: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    state: str
    run_id: str | None
    as_of: dt.date | None


def resolve(con: duckdb.DuckDBPyConnection, object_type: str) -> None:
    """Resolve the open letters of the records in the registered ``ids`` table (their write was
    just confirmed; call inside the write-through transaction)."""
    con.execute(
        "UPDATE dead_letter SET state = 'resolved', last_seen = $now FROM ids i "
        "WHERE dead_letter.object_type = $ot AND dead_letter.external_id = i.external_id "
        "AND dead_letter.state IN ('open', 'replayed')",
        {"ot": object_type, "now": now()},
    )


def record(con: duckdb.DuckDBPyConnection, letters: list[DeadLetter], run_id: str) -> None:
    """Insert each rejected record, or bump ``attempts``/``last_seen`` of its open letter
    (inside the caller's transaction)."""
    ts = now()
    for d in letters:
        payload = json.dumps(d.payload, default=str, sort_keys=True)
        hit = con.execute(
            "UPDATE dead_letter SET attempts = attempts + $att, last_seen = $now, "
            "payload = $payload, category = $cat, message = $msg, correlation_id = $cid, "
            "state = 'open', run_id = $run, as_of = coalesce($as_of, as_of) "
            "WHERE object_type = $ot AND external_id = $ext "
            "AND state IN ('open', 'replayed') RETURNING letter_id",
            {
                "att": d.attempts,
                "now": ts,
                "payload": payload,
                "cat": d.category,
                "msg": d.message,
                "cid": d.correlation_id,
                "run": run_id,
                "as_of": d.as_of,
                "ot": d.object_type,
                "ext": d.external_id,
            },
        ).fetchall()
        if hit:
            continue
        con.execute(
            "INSERT INTO dead_letter (object_type, external_id, payload, category, "
            "message, correlation_id, attempts, first_seen, last_seen, state, run_id, "
            "as_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)",
            [
                d.object_type,
                d.external_id,
                payload,
                d.category,
                d.message,
                d.correlation_id,
                d.attempts,
                ts,
                ts,
                run_id,
                d.as_of,
            ],
        )


class DeadLetterStore:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def record(self, letters: list[DeadLetter], run_id: str) -> None:
        """Insert each rejected record, or bump ``attempts``/``last_seen`` of its open letter."""
        if not letters:
            return
        with self._c.transaction() as con:
            record(con, letters, run_id)

    def letters(
        self, object_type: str | None = None, states: tuple[str, ...] = ("open",)
    ) -> list[DeadLetterRecord]:
        """Dead letters in ``states`` (default: open), oldest first."""
        with self._c.connection() as con:
            rows = con.execute(
                "SELECT letter_id, object_type, external_id, payload, category, message, "
                "correlation_id, attempts, first_seen, last_seen, state, run_id, as_of "
                "FROM dead_letter WHERE ($ot IS NULL OR object_type = $ot) "
                "AND list_contains($states, state) ORDER BY first_seen, letter_id",
                {"ot": object_type, "states": list(states)},
            ).fetchall()
        return [
            DeadLetterRecord(r[0], r[1], r[2], json.loads(r[3]) if r[3] else {}, *r[4:])  # type: ignore[arg-type]
            for r in rows
        ]

    def parked(self, object_type: str) -> dict[str, dict[str, str]]:
        """The parked records of ``object_type``: external id → the properties HubSpot rejected
        (open letters with a permanent category). The sync skips a record while its planned
        change is exactly these properties."""
        with self._c.connection() as con:
            rows = con.execute(
                "SELECT external_id, payload FROM dead_letter WHERE object_type = $ot "
                "AND state = 'open' AND NOT list_contains($transient, coalesce(category, ''))",
                {"ot": object_type, "transient": sorted(TRANSIENT_CATEGORIES)},
            ).fetchall()
        out: dict[str, dict[str, str]] = {}
        for external_id, payload in rows:
            props = (json.loads(payload) if payload else {}).get("properties") or {}
            out[external_id] = {str(k): "" if v is None else str(v) for k, v in props.items()}
        return out

    def transient(self, object_type: str) -> dict[str, int]:
        """Records of ``object_type`` whose open letter is transient: external id → attempts so
        far (the next sync sends them again by itself)."""
        with self._c.connection() as con:
            rows = con.execute(
                "SELECT external_id, attempts FROM dead_letter WHERE object_type = $ot "
                "AND state = 'open' AND list_contains($transient, category)",
                {"ot": object_type, "transient": sorted(TRANSIENT_CATEGORIES)},
            ).fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    def resolve_ids(self, object_type: str, external_ids: Iterable[str]) -> int:
        """Resolve open/replayed letters of records that need no write any more (a replay found
        them in step, or no longer desired); returns how many."""
        ids = list(external_ids)
        if not ids:
            return 0
        with self._c.connection() as con:
            rows = con.execute(
                "UPDATE dead_letter SET state = 'resolved', last_seen = $now "
                "WHERE object_type = $ot AND list_contains($ids, external_id) "
                "AND state IN ('open', 'replayed') RETURNING letter_id",
                {"now": now(), "ot": object_type, "ids": ids},
            ).fetchall()
        return len(rows)

    def purge(self, before: dt.datetime, *, include_open: bool = False) -> int:
        """Delete letters last seen before ``before``: resolved and replayed ones, and open ones
        too with ``include_open`` (their records are then sent again by the next sync)."""
        states = ["resolved", "replayed", *(["open"] if include_open else [])]
        with self._c.connection() as con:
            rows = con.execute(
                "DELETE FROM dead_letter WHERE last_seen < $before "
                "AND list_contains($states, state) RETURNING letter_id",
                {"before": before, "states": states},
            ).fetchall()
        return len(rows)

    def mark_replayed(self, letter_ids: Iterable[int]) -> int:
        """Mark open letters as replayed (re-sent); returns how many changed state."""
        ids = list(letter_ids)
        if not ids:
            return 0
        with self._c.connection() as con:
            rows = con.execute(
                "UPDATE dead_letter SET state = 'replayed', last_seen = $now "
                "WHERE state = 'open' AND list_contains($ids, letter_id) RETURNING letter_id",
                {"now": now(), "ids": ids},
            ).fetchall()
        return len(rows)

    def changes(
        self, object_type: str, letter_ids: Iterable[int] | None = None
    ) -> list[RecordChange]:
        """The open dead letters of ``object_type`` as :class:`RecordChange` s to re-send.

        Uses each letter's payload properties; the HubSpot id comes from the snapshot.
        """
        wanted = None if letter_ids is None else set(letter_ids)
        letters = [d for d in self.letters(object_type) if wanted is None or d.letter_id in wanted]
        if not letters:
            return []
        with self._c.connection() as con:
            known = dict(
                con.execute(
                    "SELECT external_id, any_value(hubspot_id) FROM snapshot "
                    "WHERE object_type = $ot AND list_contains($ids, external_id) "
                    "GROUP BY external_id",
                    {"ot": object_type, "ids": [d.external_id for d in letters]},
                ).fetchall()
            )
        out = []
        for d in letters:
            props = d.payload.get("properties") or {}
            out.append(
                RecordChange(
                    object_type=object_type,
                    external_id=d.external_id,
                    hubspot_id=known.get(d.external_id),
                    properties={str(k): "" if v is None else str(v) for k, v in props.items()},
                    as_of=d.as_of or dt.date.today(),
                    kind="update" if d.external_id in known else "create",
                )
            )
        return out
