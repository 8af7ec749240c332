"""Our records merged into another of our records in HubSpot.

A person merged two records that both carry one of our external ids (two companies they
decided are one). The survivor keeps one external id (the primary's); the other external id is
"merged away": it stays mapped to the survivor here, so

- the plan writes nothing for it (no upsert by its external id, which would re-create the
  record HubSpot just merged away) and lists it as ``merged_into_ours`` in
  ``spokesync state ambiguous`` (:mod:`spokesync.adoption`);
- links to it resolve to the survivor (:meth:`spokesync.state.store.StateStore.hubspot_ids`),
  which is where HubSpot moved them, so they are kept and not re-sent.

Its desired values are held, not written, until a person decides: the warehouse stops sending
the record (the accounts really were one), or ``spokesync state pin OBJECT ID --create`` makes
it a record of its own again (the merge was a mistake). A later merge of the survivor moves the
row to the new survivor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from spokesync.state.connection import Connection, now

DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS merged_away (
        object_type VARCHAR NOT NULL,
        external_id VARCHAR NOT NULL,           -- ours, no longer on any HubSpot record
        survivor_hubspot_id VARCHAR NOT NULL,
        survivor_external_id VARCHAR NOT NULL,  -- the one of ours the survivor carries
        merged_hubspot_id VARCHAR,              -- the id the record had before the merge
        run_id VARCHAR,
        merged_at TIMESTAMPTZ NOT NULL
    )""",
)


@dataclass(frozen=True, slots=True)
class MergedAway:
    object_type: str
    external_id: str
    survivor_hubspot_id: str
    survivor_external_id: str
    merged_hubspot_id: str | None
    run_id: str | None
    merged_at: dt.datetime


class MergedStore:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def record(
        self,
        object_type: str,
        external_id: str,
        survivor_hubspot_id: str,
        survivor_external_id: str,
        merged_hubspot_id: str | None,
        run_id: str | None,
    ) -> None:
        """``external_id`` was merged into the record ``survivor_external_id`` owns: map it to
        the survivor and drop its snapshot rows (one transaction)."""
        params = {"ot": object_type, "ext": external_id}
        with self._c.transaction() as con:
            con.execute(
                "DELETE FROM merged_away WHERE object_type = $ot AND external_id = $ext", params
            )
            con.execute(
                "INSERT INTO merged_away VALUES ($ot, $ext, $sid, $sext, $old, $run, $now)",
                {
                    **params,
                    "sid": survivor_hubspot_id,
                    "sext": survivor_external_id,
                    "old": merged_hubspot_id,
                    "run": run_id,
                    "now": now(),
                },
            )
            for table in ("snapshot", "snapshot_record"):
                con.execute(
                    f"DELETE FROM {table} WHERE object_type = $ot AND external_id = $ext", params
                )

    def follow(self, object_type: str, survivor_hubspot_id: str, merged_ids: Iterable[str]) -> int:
        """A survivor merged again: rows pointing at one of ``merged_ids`` move to the new
        survivor. Returns how many moved."""
        ids = list(merged_ids)
        if not ids:
            return 0
        with self._c.connection() as con:
            rows = con.execute(
                "UPDATE merged_away SET survivor_hubspot_id = $sid WHERE object_type = $ot "
                "AND list_contains($ids, survivor_hubspot_id) RETURNING 1",
                {"ot": object_type, "sid": survivor_hubspot_id, "ids": ids},
            ).fetchall()
        return len(rows)

    def survivors(self, object_type: str, external_ids: Iterable[str]) -> dict[str, str]:
        """``{external_id: survivor HubSpot id}`` of the given records that were merged away."""
        ids = list(dict.fromkeys(external_ids))
        if not ids:
            return {}
        with self._c.connection() as con:
            con.register("wanted_ids", pa.table({"external_id": pa.array(ids, pa.string())}))
            try:
                rows = con.execute(
                    "SELECT m.external_id, m.survivor_hubspot_id FROM merged_away m "
                    "SEMI JOIN wanted_ids w ON w.external_id = m.external_id "
                    "WHERE m.object_type = $ot",
                    {"ot": object_type},
                ).fetchall()
            finally:
                con.unregister("wanted_ids")
        return dict(rows)

    def list(self, object_type: str | None = None) -> list[MergedAway]:
        with self._c.connection() as con:
            rows = con.execute(
                "SELECT * FROM merged_away WHERE $ot IS NULL OR object_type = $ot "
                "ORDER BY object_type, external_id",
                {"ot": object_type},
            ).fetchall()
        return [MergedAway(*r) for r in rows]


def forget_owned(con: duckdb.DuckDBPyConnection, object_type: str) -> None:
    """Records of ours back in the snapshot (pinned ``--create``, re-created) are not merged
    away any more."""
    con.execute(
        "DELETE FROM merged_away WHERE object_type = $ot AND external_id IN "
        "(SELECT external_id FROM snapshot_record WHERE object_type = $ot)",
        {"ot": object_type},
    )
