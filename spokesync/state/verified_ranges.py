"""Stretches of last-modified time a push proved hold only its own writes.

While a large push runs, spokesync counts the stretches of time its confirmed writes fill
(HubSpot's search ``total`` over the last-modified date, once the search index has had time
to catch up: :mod:`spokesync.sync.verify_push`). A stretch whose count equals the writes we
know landed there holds nothing anyone else modified, and nothing can land in it later
(a record's last-modified date only ever moves to the moment of its next modification). The
next incremental refresh therefore skips these stretches instead of counting them again (see
:mod:`spokesync.sync.own_window`). Rows older than the refresh cursor minus its overlap can
never be asked for again and are pruned by each refresh.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from spokesync.state.connection import Connection, now

DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS verified_range (
        object_type VARCHAR NOT NULL,
        lo_ms BIGINT NOT NULL,       -- epoch ms, inclusive
        hi_ms BIGINT NOT NULL,       -- epoch ms, inclusive
        records BIGINT NOT NULL,     -- our writes HubSpot counted there (and nothing else)
        run_id VARCHAR,
        checked_at TIMESTAMPTZ NOT NULL
    )""",
)


@dataclass(frozen=True, slots=True)
class VerifiedRange:
    lo_ms: int
    hi_ms: int
    records: int


class VerifiedRangeStore:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def add(self, object_type: str, ranges: Iterable[VerifiedRange], run_id: str) -> int:
        """Save ranges a push's counts proved (one transaction)."""
        rows = [
            {
                "ot": object_type,
                "lo": r.lo_ms,
                "hi": r.hi_ms,
                "n": r.records,
                "run": run_id,
                "at": now(),
            }
            for r in ranges
        ]
        if not rows:
            return 0
        with self._c.transaction() as con:
            con.executemany(
                "INSERT INTO verified_range VALUES ($ot, $lo, $hi, $n, $run, $at)", rows
            )
        return len(rows)

    def since(self, object_type: str, since_ms: int) -> list[VerifiedRange]:
        """Ranges ending at or after ``since_ms``, in time order."""
        with self._c.connection() as con:
            rows = con.execute(
                "SELECT lo_ms, hi_ms, records FROM verified_range WHERE object_type = $ot "
                "AND hi_ms >= $since ORDER BY lo_ms, hi_ms",
                {"ot": object_type, "since": since_ms},
            ).fetchall()
        return [VerifiedRange(int(lo), int(hi), int(n)) for lo, hi, n in rows]

    def prune(self, object_type: str, before_ms: int) -> None:
        """Forget ranges no refresh window can reach any more."""
        with self._c.transaction() as con:
            con.execute(
                "DELETE FROM verified_range WHERE object_type = $ot AND hi_ms < $before",
                {"ot": object_type, "before": before_ms},
            )
