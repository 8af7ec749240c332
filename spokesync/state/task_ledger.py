"""The task ledger: exactly one HubSpot task per event, however often a run repeats.

HubSpot tasks have no unique property, so a create cannot be made idempotent by HubSpot. The
ledger is keyed by the deterministic event id of what caused the task (e.g. "account X crossed
the usage threshold on day D"), and each entry goes through:

- ``pending``: written and **committed before** the create call, with the marker the task
  carries. A process killed after HubSpot created the task but before ``created`` was recorded
  leaves the entry pending; the next run finds the task by its marker before creating again;
- ``created``: HubSpot's task id is known. Never created again.

An event the ledger has never seen is new; a pending one is recovered first.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from spokesync.state.connection import Connection, now

DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS task_ledger (
        event_id VARCHAR NOT NULL,       -- deterministic: trigger + key columns (+ crossing day)
        trigger VARCHAR NOT NULL,
        about_type VARCHAR NOT NULL,     -- the object the task is associated with
        about_external_id VARCHAR NOT NULL,
        about_hubspot_id VARCHAR,
        state VARCHAR NOT NULL,          -- 'pending' | 'created'
        task_id VARCHAR,                 -- HubSpot's task id once known
        marker VARCHAR NOT NULL,         -- the token in the task body that finds it again
        payload JSON,                    -- the task properties as sent
        run_id VARCHAR,                  -- the run that created (or recovered) it
        recovered BOOLEAN NOT NULL DEFAULT false,
        first_seen TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL
    )""",
)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    event_id: str
    trigger: str
    about_type: str
    about_external_id: str
    about_hubspot_id: str | None
    state: str
    task_id: str | None
    marker: str
    payload: dict[str, Any]
    run_id: str | None
    recovered: bool
    first_seen: dt.datetime
    updated_at: dt.datetime


_COLUMNS = (
    "event_id, trigger, about_type, about_external_id, about_hubspot_id, state, task_id, "
    "marker, payload, run_id, recovered, first_seen, updated_at"
)


class TaskLedger:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def entries(self, event_ids: Iterable[str] | None = None) -> dict[str, LedgerEntry]:
        """Entries by event id (all, or those of ``event_ids``)."""
        ids = None if event_ids is None else sorted(set(event_ids))
        with self._c.connection() as con:
            rows = con.execute(
                f"SELECT {_COLUMNS} FROM task_ledger "
                "WHERE $ids IS NULL OR list_contains($ids, event_id) ORDER BY event_id",
                {"ids": ids},
            ).fetchall()
        out = {}
        for r in rows:
            payload = json.loads(r[8]) if isinstance(r[8], str) else (r[8] or {})
            out[r[0]] = LedgerEntry(*r[:8], payload, *r[9:])  # type: ignore[arg-type]
        return out

    def mark_pending(self, entries: list[dict[str, Any]], run_id: str) -> None:
        """Record the intent before the create call (committed at once). Each dict holds
        event_id, trigger, about_type, about_external_id, about_hubspot_id, marker, payload."""
        if not entries:
            return
        stamp = now()
        with self._c.transaction() as con:
            for e in entries:
                con.execute(
                    "INSERT INTO task_ledger (event_id, trigger, about_type, about_external_id, "
                    "about_hubspot_id, state, marker, payload, run_id, first_seen, updated_at) "
                    "SELECT $event_id, $trigger, $about_type, $about_external_id, "
                    "$about_hubspot_id, 'pending', $marker, $payload, $run, $now, $now "
                    "WHERE NOT EXISTS (SELECT 1 FROM task_ledger WHERE event_id = $event_id)",
                    {
                        **{k: e[k] for k in ("event_id", "trigger", "about_type", "marker")},
                        "about_external_id": e["about_external_id"],
                        "about_hubspot_id": e.get("about_hubspot_id"),
                        "payload": json.dumps(e.get("payload") or {}, sort_keys=True),
                        "run": run_id,
                        "now": stamp,
                    },
                )

    def mark_created(
        self, created: dict[str, str], run_id: str, *, recovered: bool = False
    ) -> None:
        """``created``: event id → HubSpot task id."""
        if not created:
            return
        stamp = now()
        with self._c.transaction() as con:
            for event_id, task_id in created.items():
                con.execute(
                    "UPDATE task_ledger SET state = 'created', task_id = $task, run_id = $run, "
                    "recovered = $rec, updated_at = $now WHERE event_id = $event_id",
                    {
                        "task": task_id,
                        "run": run_id,
                        "rec": recovered,
                        "now": stamp,
                        "event_id": event_id,
                    },
                )

    def counts(self) -> dict[str, int]:
        with self._c.connection() as con:
            return dict(
                con.execute("SELECT state, count(*) FROM task_ledger GROUP BY state").fetchall()
            )
