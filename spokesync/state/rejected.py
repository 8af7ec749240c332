"""Records dropped before the push, listed: desired-state rows rejected for an empty id, a
number that is not finite, or a duplicate id that lost to another row.

Each sync run replaces the rows of its (run, object type); ``spokesync state rejected`` shows
the latest run per object type (from ``sync_runs``: a run that rejected nothing shows nothing). Source rows quarantined at ingest are in the warehouse's
``quarantine`` view instead (see ``docs/ingestion.md``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa

from spokesync.state.connection import Connection, now

DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS rejected_records (
        run_id VARCHAR NOT NULL,
        object_type VARCHAR NOT NULL,
        as_of DATE,
        external_id VARCHAR,        -- NULL when the id itself was empty
        reason VARCHAR NOT NULL,
        record JSON,                -- the row's canonical values, to find it in the source
        rejected_at TIMESTAMPTZ NOT NULL
    )""",
)


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    run_id: str
    object_type: str
    as_of: dt.date | None
    external_id: str | None
    reason: str
    record: str | None
    rejected_at: dt.datetime


class RejectedStore:
    """Records a run rejected before planning (never sent), by run and object type."""

    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def record(self, run_id: str, object_type: str, as_of: dt.date, rows: pa.Table) -> int:
        """Replace this run's rejected records of ``object_type`` with ``rows``
        (``external_id``, ``reason``, ``record``). Returns how many."""
        with self._c.transaction() as con:
            con.execute(
                "DELETE FROM rejected_records WHERE run_id = $run AND object_type = $ot",
                {"run": run_id, "ot": object_type},
            )
            if rows.num_rows:
                con.register("rejected_in", rows)
                try:
                    con.execute(
                        "INSERT INTO rejected_records SELECT $run, $ot, $as_of, external_id, "
                        "reason, record, $at FROM rejected_in",
                        {"run": run_id, "ot": object_type, "as_of": as_of, "at": now()},
                    )
                finally:
                    con.unregister("rejected_in")
        return rows.num_rows

    def latest(
        self, object_type: str | None = None, run_id: str | None = None, limit: int = 1000
    ) -> list[RejectedRecord]:
        """Rejected records of ``run_id`` (default: each object type's latest run)."""
        with self._c.connection() as con:
            rows = con.execute(
                "WITH latest AS (SELECT object_type, arg_max(run_id, started_at) AS run_id "
                "FROM sync_runs GROUP BY object_type) "
                "SELECT r.run_id, r.object_type, r.as_of, r.external_id, r.reason, "
                "CAST(r.record AS VARCHAR), r.rejected_at FROM rejected_records r "
                "WHERE ($ot IS NULL OR r.object_type = $ot) AND (CASE WHEN $run IS NULL THEN "
                "r.run_id = (SELECT run_id FROM latest l WHERE l.object_type = r.object_type) "
                "ELSE r.run_id = $run END) "
                "ORDER BY r.object_type, r.external_id NULLS FIRST, r.reason LIMIT $lim",
                {"ot": object_type, "run": run_id, "lim": limit},
            ).fetchall()
        return [RejectedRecord(*r) for r in rows]
