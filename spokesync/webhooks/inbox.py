"""The webhook inbox: accepted events, kept durably in their own SQLite file.

Its own file, not the DuckDB state store: the receiver must answer within HubSpot's five
seconds while a push may hold the state store's single writer for minutes, and DuckDB lets no
other process open a file another one writes. SQLite in WAL mode lets the receiver commit while
the Dagster sensor reads. ``synchronous=FULL``: an event that was answered 200 survives a crash.

Tables: ``events`` (one row per distinct notification, ``seq`` increases), ``requests`` (the
signatures seen in the last minutes, so a captured request replayed verbatim is refused) and
``rejections`` (why requests were refused, without their bodies).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from spokesync.webhooks.events import WebhookEvent

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        identity TEXT NOT NULL UNIQUE,
        event_id TEXT NOT NULL,
        subscription_type TEXT NOT NULL,
        object_type TEXT,
        object_ids TEXT NOT NULL,       -- JSON array of HubSpot record ids
        property_name TEXT,
        occurred_at INTEGER NOT NULL,   -- ms, HubSpot's clock
        received_at INTEGER NOT NULL,   -- ms, ours
        portal_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        payload TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS requests (
        signature TEXT PRIMARY KEY,
        timestamp_ms INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS requests_by_time ON requests (timestamp_ms)",
    """CREATE TABLE IF NOT EXISTS rejections (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        received_at INTEGER NOT NULL,
        reason TEXT NOT NULL,
        detail TEXT NOT NULL,
        remote TEXT
    )""",
)


@dataclass(frozen=True, slots=True)
class Accepted:
    accepted: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    object_type: str | None
    object_ids: tuple[str, ...]
    subscription_type: str
    occurred_at: int


class ReplayedRequest(Exception):
    """This exact signed request was already received."""


class WebhookInbox:
    """Thread-safe access to the inbox file (one connection, one lock)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._con = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("PRAGMA synchronous=FULL")
        self._con.execute("PRAGMA busy_timeout=5000")
        with self._lock:
            for ddl in SCHEMA:
                self._con.execute(ddl)

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def __enter__(self) -> WebhookInbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def accept(
        self,
        events: Iterable[WebhookEvent],
        *,
        signature: str,
        timestamp_ms: int,
        received_ms: int,
        forget_before_ms: int,
    ) -> Accepted:
        """Store one verified delivery in one transaction. Raises :class:`ReplayedRequest` if
        its signature was seen before; events already stored count as duplicates."""
        accepted = duplicates = 0
        with self._lock:
            con = self._con
            con.execute("BEGIN IMMEDIATE")
            try:
                con.execute("DELETE FROM requests WHERE timestamp_ms < ?", [forget_before_ms])
                cur = con.execute(
                    "INSERT OR IGNORE INTO requests VALUES (?, ?)", [signature, timestamp_ms]
                )
                if cur.rowcount == 0:
                    raise ReplayedRequest(signature)
                for e in events:
                    cur = con.execute(
                        "INSERT OR IGNORE INTO events (identity, event_id, subscription_type, "
                        "object_type, object_ids, property_name, occurred_at, received_at, "
                        "portal_id, attempt, payload) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        [
                            e.identity,
                            e.event_id,
                            e.subscription_type,
                            e.object_type,
                            json.dumps(list(e.object_ids)),
                            e.property_name,
                            e.occurred_at,
                            received_ms,
                            e.portal_id,
                            e.attempt,
                            json.dumps(e.raw, separators=(",", ":")),
                        ],
                    )
                    if cur.rowcount:
                        accepted += 1
                    else:
                        duplicates += 1
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return Accepted(accepted, duplicates)

    def reject(self, reason: str, detail: str, *, received_ms: int, remote: str | None) -> None:
        with self._lock:
            self._con.execute(
                "INSERT INTO rejections (received_at, reason, detail, remote) VALUES (?,?,?,?)",
                [received_ms, reason, detail[:200], remote],
            )

    def events_after(self, seq: int, limit: int = 10_000) -> list[StoredEvent]:
        with self._lock:
            rows = self._con.execute(
                "SELECT seq, object_type, object_ids, subscription_type, occurred_at FROM events "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                [seq, limit],
            ).fetchall()
        return [StoredEvent(r[0], r[1], tuple(json.loads(r[2])), r[3], r[4]) for r in rows]

    def receipts(self, first_seq: int, last_seq: int) -> dict[str, tuple[int, int]]:
        """Per object type, the events in ``first_seq..last_seq`` and the earliest receipt
        (ms, our clock): where a webhook-triggered run's latency starts."""
        with self._lock:
            rows = self._con.execute(
                "SELECT object_type, count(*), min(received_at) FROM events "
                "WHERE seq BETWEEN ? AND ? AND object_type IS NOT NULL GROUP BY 1",
                [first_seq, last_seq],
            ).fetchall()
        return {r[0]: (int(r[1]), int(r[2])) for r in rows}

    def last_seq(self) -> int:
        with self._lock:
            row = self._con.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
        return int(row[0])

    def counts(self) -> dict[str, int]:
        """Events stored and requests rejected, by reason (for status and tests)."""
        with self._lock:
            out = {"events": self._con.execute("SELECT count(*) FROM events").fetchone()[0]}
            for reason, n in self._con.execute(
                "SELECT reason, count(*) FROM rejections GROUP BY reason ORDER BY reason"
            ).fetchall():
                out[f"rejected_{reason}"] = n
        return out
