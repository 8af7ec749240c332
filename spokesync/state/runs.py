"""Sync runs (one row per run and object), planned changes of shadow runs, and the sync log
(one row per HTTP call of a push)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from spokesync.changes import BatchLog
from spokesync.state.connection import Connection, now

DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS sync_log (
        run_id VARCHAR NOT NULL,
        batch_seq INTEGER NOT NULL,
        request_id VARCHAR NOT NULL,
        object_type VARCHAR NOT NULL,
        endpoint VARCHAR NOT NULL,
        status_code INTEGER,
        correlation_id VARCHAR,
        latency_ms DOUBLE,
        records_sent INTEGER,
        records_ok INTEGER,
        records_failed INTEGER,
        attempt INTEGER,
        error VARCHAR,
        sent_at TIMESTAMPTZ
    )""",
    """CREATE TABLE IF NOT EXISTS planned_changes (
        run_id VARCHAR NOT NULL,
        object_type VARCHAR NOT NULL,
        external_id VARCHAR NOT NULL,
        hubspot_id VARCHAR,
        property VARCHAR NOT NULL,
        old_value VARCHAR,
        new_value VARCHAR,
        kind VARCHAR NOT NULL,      -- 'create' | 'update'
        as_of DATE
    )""",
    """CREATE TABLE IF NOT EXISTS sync_runs (
        run_id VARCHAR NOT NULL,
        object_type VARCHAR NOT NULL,
        mapping_version VARCHAR,
        shadow BOOLEAN NOT NULL,
        as_of DATE,
        started_at TIMESTAMPTZ NOT NULL,
        finished_at TIMESTAMPTZ,
        status VARCHAR NOT NULL,    -- 'running' | 'succeeded' | 'failed'
        counts JSON
    )""",
)

SYNC_LOG_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("batch_seq", pa.int32()),
        ("request_id", pa.string()),
        ("object_type", pa.string()),
        ("endpoint", pa.string()),
        ("status_code", pa.int32()),
        ("correlation_id", pa.string()),
        ("latency_ms", pa.float64()),
        ("records_sent", pa.int32()),
        ("records_ok", pa.int32()),
        ("records_failed", pa.int32()),
        ("attempt", pa.int32()),
        ("error", pa.string()),
        ("sent_at", pa.timestamp("us", tz="UTC")),
    ]
)


def sync_log_table(entries: list[BatchLog]) -> pa.Table:
    """Sync-log rows as one Arrow table (for appending many at once)."""
    return pa.table(
        {name: [getattr(e, name) for e in entries] for name in SYNC_LOG_SCHEMA.names},
        schema=SYNC_LOG_SCHEMA,
    )


class RunStore:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    # ------------------------------------------------------------------ sync log

    def record_batch(self, entry: BatchLog) -> None:
        """Append one HTTP call of the push to the sync log."""
        with self._c.connection() as con:
            con.execute(
                "INSERT INTO sync_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [getattr(entry, name) for name in SYNC_LOG_SCHEMA.names],
            )

    # ------------------------------------------------------------------ runs

    def start(
        self,
        run_id: str,
        object_type: str,
        mapping_version: str | None,
        shadow: bool,
        as_of: dt.date | None = None,
    ) -> None:
        with self._c.transaction() as con:
            # One row per (run, object): a step that re-plans in the same run replaces it.
            con.execute(
                "DELETE FROM sync_runs WHERE run_id = ? AND object_type = ?", [run_id, object_type]
            )
            con.execute(
                "INSERT INTO sync_runs VALUES (?, ?, ?, ?, ?, ?, NULL, 'running', NULL)",
                [run_id, object_type, mapping_version, shadow, as_of, now()],
            )

    def finish(self, run_id: str, object_type: str, status: str, counts: Mapping[str, Any]) -> None:
        with self._c.connection() as con:
            con.execute(
                "UPDATE sync_runs SET finished_at = ?, status = ?, counts = ? "
                "WHERE run_id = ? AND object_type = ?",
                [now(), status, json.dumps(dict(counts), default=str), run_id, object_type],
            )

    # ------------------------------------------------------------------ planned changes

    def record_planned_changes(
        self, run_id: str, object_type: str, rows: pa.RecordBatchReader | pa.Table
    ) -> int:
        """Store one object's planned changes for a run (see ``ChangePlan.planned_rows``);
        returns how many rows it holds. Re-planning the object in the same run (the changes
        asset, then a shadow push) replaces its plan instead of recording it twice."""
        with self._c.transaction() as con:
            con.execute(
                "DELETE FROM planned_changes WHERE run_id = ? AND object_type = ?",
                [run_id, object_type],
            )
            con.register("planned_rows", rows)
            con.execute(
                "INSERT INTO planned_changes SELECT $run, object_type, external_id, hubspot_id, "
                "property, old_value, new_value, kind, as_of FROM planned_rows",
                {"run": run_id},
            )
            con.unregister("planned_rows")
            row = con.execute(
                "SELECT count(*) FROM planned_changes WHERE run_id = ? AND object_type = ?",
                [run_id, object_type],
            ).fetchall()[0]
        return int(row[0])

    def planned_changes(
        self, run_id: str | None = None, object_type: str | None = None, limit: int = 100
    ) -> list[tuple[Any, ...]]:
        """Rows of ``planned_changes`` (latest run when ``run_id`` is None)."""
        with self._c.connection() as con:
            if run_id is None:
                rows = con.execute(
                    "SELECT run_id FROM sync_runs WHERE shadow ORDER BY started_at DESC LIMIT 1"
                ).fetchall()
                if not rows:
                    rows = con.execute("SELECT max(run_id) FROM planned_changes").fetchall()
                run_id = rows[0][0] if rows else None
            return con.execute(
                "SELECT run_id, object_type, external_id, hubspot_id, property, old_value, "
                "new_value, kind, as_of FROM planned_changes WHERE run_id = $run "
                "AND ($ot IS NULL OR object_type = $ot) "
                "ORDER BY object_type, external_id, property LIMIT $lim",
                {"run": run_id, "ot": object_type, "lim": limit},
            ).fetchall()
