"""Adoption's tables: what the portal holds beyond our records, ambiguous matches, and pins.

- ``portal_match_values``: the raw values of the match properties (``domain``,
  ``hs_additional_emails``, a mapping's ``match:`` properties) of every record a refresh read,
  ours or not, by HubSpot id. The diff joins desired match keys to it (:mod:`spokesync.adoption`).
- ``portal_unowned``: the canonical values of the managed properties of records that do not
  carry our external id yet. An adopted record is diffed against them, so adoption writes only
  the external id and the values that really differ (hubspot-owned fields people filled stand).
- ``match_ambiguous``: records the last plan could not adopt (several candidates, or one
  candidate wanted by several records); nothing is written for them until a person merges the
  candidates in HubSpot or pins the record. Also records of ours that another, unowned
  HubSpot record duplicates (``duplicate_in_hubspot``, e.g. a company HubSpot auto-created
  from a contact's email domain): ours is written; the duplicate waits for a person's merge.
- ``match_pins``: a person's decision, external id → HubSpot id (or "create a new record").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from spokesync.canonical import canonical
from spokesync.state.connection import Connection, now
from spokesync.state.merged import forget_owned
from spokesync.state.snapshot import rebuild_record_fingerprints

DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS portal_match_values (
        object_type VARCHAR NOT NULL,
        hubspot_id VARCHAR NOT NULL,
        property VARCHAR NOT NULL,
        value VARCHAR NOT NULL      -- as HubSpot holds it; normalised by the diff's rules
    )""",
    """CREATE TABLE IF NOT EXISTS portal_unowned (
        object_type VARCHAR NOT NULL,
        hubspot_id VARCHAR NOT NULL,
        property VARCHAR NOT NULL,
        value VARCHAR               -- canonical; NULL = HubSpot holds no value
    )""",
    """CREATE TABLE IF NOT EXISTS match_ambiguous (
        object_type VARCHAR NOT NULL,
        external_id VARCHAR NOT NULL,
        rule VARCHAR NOT NULL,      -- the rule that matched, e.g. "domain → domain (domain)"
        match_key VARCHAR,
        candidates VARCHAR[] NOT NULL,
        -- not written: 'several_candidates' | 'contested' | 'pin_claimed';
        -- ours written, another HubSpot record looks the same: 'duplicate_in_hubspot'
        reason VARCHAR NOT NULL,
        run_id VARCHAR,
        seen_at TIMESTAMPTZ NOT NULL
    )""",
    # Our records a full refresh no longer found in HubSpot (archived/deleted there, not merged).
    """CREATE TABLE IF NOT EXISTS portal_archived (
        object_type VARCHAR NOT NULL,
        external_id VARCHAR NOT NULL,
        hubspot_id VARCHAR,
        seen_at TIMESTAMPTZ NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS match_pins (
        object_type VARCHAR NOT NULL,
        external_id VARCHAR NOT NULL,
        hubspot_id VARCHAR,         -- NULL: never adopt, create a new record
        note VARCHAR,
        created_at TIMESTAMPTZ NOT NULL
    )""",
)

_CHUNK = 50_000
_ROWS = ("hubspot_id", "property", "value")


@dataclass(frozen=True, slots=True)
class AmbiguousMatch:
    object_type: str
    external_id: str
    rule: str
    match_key: str | None
    candidates: list[str]
    reason: str
    run_id: str | None
    seen_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Pin:
    object_type: str
    external_id: str
    hubspot_id: str | None  # None: create a new record, never adopt
    note: str | None


class PortalCollector:
    """Collects, while a refresh streams records into the snapshot, the match-property values
    of every record and the managed values of records without our external id.

    Values are kept as compact Arrow chunks, so a portal of 100k unowned companies costs tens
    of MB, not a dict per record."""

    def __init__(
        self,
        object_type: str,
        id_property: str,
        managed: Sequence[str],
        match_properties: Sequence[str],
        types: Mapping[str, str],
    ) -> None:
        self.object_type = object_type
        self.id_property = id_property
        self.managed = list(dict.fromkeys([id_property, *managed]))
        self.match_properties = list(match_properties)
        self.types = dict(types)
        self.id_form = types.get(id_property, "email" if id_property == "email" else "string")
        self.hubspot_ids: list[str] = []  # every record seen (for incremental updates)
        self._match: dict[str, list[str | None]] = {k: [] for k in _ROWS}
        self._unowned: dict[str, list[str | None]] = {k: [] for k in _ROWS}
        self.match_chunks: list[pa.Table] = []
        self.unowned_chunks: list[pa.Table] = []
        self.unowned_records = 0

    def tee(self, records: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
        """Yield ``records`` unchanged, collecting what adoption needs from each."""
        for rec in records:
            self.add(rec)
            yield rec

    def add(self, rec: Mapping[str, Any]) -> None:
        if rec.get("id") is None:
            return
        hid = str(rec["id"])
        self.hubspot_ids.append(hid)
        values = rec.get("properties") or {}
        for prop in self.match_properties:
            raw = values.get(prop)
            if raw is not None and str(raw).strip() != "":
                self._append(self._match, hid, prop, str(raw))
        if canonical(self.id_form, values.get(self.id_property)) is None:
            self.unowned_records += 1
            for prop in self.managed:
                value = canonical(self.types.get(prop, "string"), values.get(prop))
                self._append(self._unowned, hid, prop, value)
        if len(self._match["hubspot_id"]) >= _CHUNK:
            self.match_chunks.append(self._flush(self._match))
        if len(self._unowned["hubspot_id"]) >= _CHUNK:
            self.unowned_chunks.append(self._flush(self._unowned))

    @staticmethod
    def _append(rows: dict[str, list[str | None]], hid: str, prop: str, value: str | None) -> None:
        rows["hubspot_id"].append(hid)
        rows["property"].append(prop)
        rows["value"].append(value)

    @staticmethod
    def _flush(rows: dict[str, list[str | None]]) -> pa.Table:
        table = pa.table({k: pa.array(v, pa.string()) for k, v in rows.items()})
        for v in rows.values():
            v.clear()
        return table

    def tables(self) -> tuple[pa.Table, pa.Table, pa.Table]:
        """(match values, unowned values, HubSpot ids seen) as Arrow tables."""
        self.match_chunks.append(self._flush(self._match))
        self.unowned_chunks.append(self._flush(self._unowned))
        ids = pa.table({"hubspot_id": pa.array(self.hubspot_ids, pa.string())})
        return (
            pa.concat_tables(self.match_chunks),
            pa.concat_tables(self.unowned_chunks),
            ids,
        )


class MatchStore:
    """The portal's unowned records and match keys, ambiguous matches and pins."""

    def __init__(self, connection: Connection) -> None:
        self._c = connection

    # ------------------------------------------------------------------ portal records

    def replace_portal(self, collector: PortalCollector) -> None:
        """After a full refresh: the portal's match values and unowned records of one object
        type are exactly what the refresh read."""
        match, unowned, _ = collector.tables()
        with self._c.transaction() as con:
            params = {"ot": collector.object_type}
            con.execute("DELETE FROM portal_match_values WHERE object_type = $ot", params)
            con.execute("DELETE FROM portal_unowned WHERE object_type = $ot", params)
            self._insert(con, collector.object_type, match, unowned)

    def update_portal(self, collector: PortalCollector) -> None:
        """After an incremental refresh: replace the rows of the records it read."""
        match, unowned, ids = collector.tables()
        if ids.num_rows == 0:
            return
        with self._c.transaction() as con:
            con.register("seen_ids", ids)
            try:
                for table in ("portal_match_values", "portal_unowned"):
                    con.execute(
                        f"DELETE FROM {table} WHERE object_type = $ot "
                        "AND hubspot_id IN (SELECT hubspot_id FROM seen_ids)",
                        {"ot": collector.object_type},
                    )
            finally:
                con.unregister("seen_ids")
            self._insert(con, collector.object_type, match, unowned)

    @staticmethod
    def _insert(
        con: duckdb.DuckDBPyConnection, object_type: str, match: pa.Table, unowned: pa.Table
    ) -> None:
        for name, table in (("portal_match_values", match), ("portal_unowned", unowned)):
            if table.num_rows == 0:
                continue
            con.register("incoming_rows", table)
            try:
                con.execute(
                    f"INSERT INTO {name} SELECT $ot, hubspot_id, property, value "
                    "FROM incoming_rows ORDER BY hubspot_id, property",
                    {"ot": object_type},
                )
            finally:
                con.unregister("incoming_rows")

    def forget_records(self, object_type: str, hubspot_ids: Iterable[str]) -> None:
        """Records gone from HubSpot (merged away, archived): not candidates any more."""
        ids = pa.table({"hubspot_id": pa.array(list(hubspot_ids), pa.string())})
        if ids.num_rows == 0:
            return
        with self._c.transaction() as con:
            con.register("gone_ids", ids)
            try:
                for table in ("portal_match_values", "portal_unowned"):
                    con.execute(
                        f"DELETE FROM {table} WHERE object_type = $ot "
                        "AND hubspot_id IN (SELECT hubspot_id FROM gone_ids)",
                        {"ot": object_type},
                    )
            finally:
                con.unregister("gone_ids")

    def unowned_count(self, object_type: str) -> int:
        with self._c.connection() as con:
            row = con.execute(
                "SELECT count(DISTINCT hubspot_id) FROM portal_unowned WHERE object_type = $ot",
                {"ot": object_type},
            ).fetchone()
        return int(row[0]) if row else 0

    def promote(self, object_type: str, run_id: str | None = None) -> int:
        """Adopted records become ordinary snapshot records (idempotent; run after a push and
        before a plan, so a run that died between the two heals itself).

        - an unowned record that now carries an external id in the snapshot gives that record
          the values the push did not send (they were already equal), and leaves
          ``portal_unowned``;
        - two external ids on one HubSpot id (a contact adopted by an additional email, still
          in the snapshot under its old primary email): the one spokesync wrote keeps it; an
          id only read from HubSpot, never written by us, is dropped.

        Returns how many records it promoted or merged."""
        params = {"ot": object_type, "now": now(), "run": run_id}
        with self._c.transaction() as con:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE promoted AS SELECT DISTINCT r.external_id, "
                "r.hubspot_id FROM snapshot_record r SEMI JOIN portal_unowned u "
                "ON u.object_type = $ot AND u.hubspot_id = r.hubspot_id "
                "WHERE r.object_type = $ot",
                {"ot": object_type},
            )
            (promoted,) = con.execute("SELECT count(*) FROM promoted").fetchone() or (0,)
            if promoted:
                con.execute(
                    "INSERT INTO snapshot SELECT $ot, p.external_id, u.hubspot_id, u.property, "
                    "u.value, NULL, 'hubspot', $now, $run FROM portal_unowned u "
                    "JOIN promoted p ON p.hubspot_id = u.hubspot_id WHERE u.object_type = $ot "
                    "AND NOT EXISTS (SELECT 1 FROM snapshot s WHERE s.object_type = $ot "
                    "AND s.external_id = p.external_id AND s.property = u.property)",
                    params,
                )
                con.execute(
                    "DELETE FROM portal_unowned WHERE object_type = $ot "
                    "AND hubspot_id IN (SELECT hubspot_id FROM promoted)",
                    {"ot": object_type},
                )
            # One HubSpot record under two external ids: keep the one written last by us.
            con.execute(
                "CREATE OR REPLACE TEMP TABLE shared AS "
                "WITH dup AS (SELECT hubspot_id FROM snapshot_record WHERE object_type = $ot "
                "  AND hubspot_id IS NOT NULL GROUP BY hubspot_id HAVING count(*) > 1), "
                "ranked AS (SELECT s.hubspot_id, s.external_id, "
                "  max(CASE WHEN s.origin = 'pushed' THEN s.updated_at END) AS pushed_at "
                "  FROM snapshot s SEMI JOIN dup d USING (hubspot_id) "
                "  WHERE s.object_type = $ot GROUP BY ALL), "
                "winner AS (SELECT hubspot_id, arg_max(external_id, pushed_at) AS keep "
                "  FROM ranked WHERE pushed_at IS NOT NULL GROUP BY hubspot_id) "
                "SELECT r.hubspot_id, r.external_id AS drop_id, w.keep FROM ranked r "
                "JOIN winner w USING (hubspot_id) WHERE r.external_id <> w.keep "
                "AND r.pushed_at IS NULL",
                {"ot": object_type},
            )
            (merged,) = con.execute("SELECT count(*) FROM shared").fetchone() or (0,)
            if merged:
                con.execute(
                    "INSERT INTO snapshot SELECT $ot, x.keep, s.hubspot_id, s.property, s.value, "
                    "s.as_of, s.origin, $now, $run FROM snapshot s "
                    "JOIN shared x ON x.drop_id = s.external_id AND x.hubspot_id = s.hubspot_id "
                    "WHERE s.object_type = $ot AND NOT EXISTS (SELECT 1 FROM snapshot k "
                    "WHERE k.object_type = $ot AND k.external_id = x.keep "
                    "AND k.property = s.property)",
                    params,
                )
                con.execute(
                    "DELETE FROM snapshot WHERE object_type = $ot AND external_id IN "
                    "(SELECT drop_id FROM shared)",
                    {"ot": object_type},
                )
            if promoted or merged:
                rebuild_record_fingerprints(con, object_type)
            forget_owned(con, object_type)  # a merged-away record of ours made again
            con.execute(  # re-created records are not archived any more
                "DELETE FROM portal_archived WHERE object_type = $ot AND external_id IN "
                "(SELECT external_id FROM snapshot_record WHERE object_type = $ot)",
                {"ot": object_type},
            )
            con.execute("DROP TABLE promoted")
            con.execute("DROP TABLE shared")
        return int(promoted) + int(merged)

    def record_archived(self, con: duckdb.DuckDBPyConnection, object_type: str) -> int:
        """Inside a full refresh (temp table ``ids_before`` holds the records before it): our
        records HubSpot no longer has, and no merge remapped, are remembered as archived;
        records present again are forgotten. Returns how many went missing in this refresh."""
        params = {"ot": object_type, "now": now()}
        rows = con.execute(
            "INSERT INTO portal_archived SELECT $ot, b.external_id, b.hubspot_id, $now "
            "FROM ids_before b WHERE b.object_type = $ot "
            "AND b.external_id NOT IN (SELECT external_id FROM snapshot_record "
            "WHERE object_type = $ot) "
            "AND b.external_id NOT IN (SELECT external_id FROM match_pins WHERE object_type = $ot) "
            "AND b.external_id NOT IN (SELECT external_id FROM merged_away "
            "WHERE object_type = $ot) "
            "AND b.external_id NOT IN (SELECT external_id FROM portal_archived "
            "WHERE object_type = $ot) RETURNING 1",
            params,
        ).fetchall()
        con.execute(
            "DELETE FROM portal_archived WHERE object_type = $ot AND external_id IN "
            "(SELECT external_id FROM snapshot_record WHERE object_type = $ot)",
            {"ot": object_type},
        )
        return len(rows)

    def archived(self, object_type: str) -> list[str]:
        with self._c.connection() as con:
            rows = con.execute(
                "SELECT external_id FROM portal_archived WHERE object_type = $ot "
                "ORDER BY external_id",
                {"ot": object_type},
            ).fetchall()
        return [r[0] for r in rows]

    # ------------------------------------------------------------------ ambiguous matches

    def record_ambiguous(self, object_type: str, rows: pa.Table, run_id: str | None) -> int:
        """Replace the ambiguous matches of ``object_type`` with ``rows`` (columns
        external_id, rule, match_key, candidates, reason) from the latest plan."""
        with self._c.transaction() as con:
            con.execute("DELETE FROM match_ambiguous WHERE object_type = $ot", {"ot": object_type})
            if rows.num_rows:
                con.register("ambiguous_rows", rows)
                try:
                    con.execute(
                        "INSERT INTO match_ambiguous SELECT $ot, external_id, rule, match_key, "
                        "candidates, reason, $run, $now FROM ambiguous_rows "
                        "ORDER BY external_id",
                        {"ot": object_type, "run": run_id, "now": now()},
                    )
                finally:
                    con.unregister("ambiguous_rows")
        return rows.num_rows

    def ambiguous(self, object_type: str | None = None) -> list[AmbiguousMatch]:
        with self._c.connection() as con:
            rows = con.execute(
                "SELECT object_type, external_id, rule, match_key, candidates, reason, run_id, "
                "seen_at FROM match_ambiguous WHERE $ot IS NULL OR object_type = $ot "
                "ORDER BY object_type, external_id",
                {"ot": object_type},
            ).fetchall()
        return [AmbiguousMatch(*r) for r in rows]

    # ------------------------------------------------------------------ pins

    def pin(
        self, object_type: str, external_id: str, hubspot_id: str | None, note: str | None = None
    ) -> None:
        """A person's decision for one record: adopt ``hubspot_id`` (``None``: create new)."""
        with self._c.transaction() as con:
            con.execute(
                "DELETE FROM match_pins WHERE object_type = $ot AND external_id = $ext",
                {"ot": object_type, "ext": external_id},
            )
            con.execute(
                "INSERT INTO match_pins VALUES ($ot, $ext, $hid, $note, $now)",
                {
                    "ot": object_type,
                    "ext": external_id,
                    "hid": hubspot_id,
                    "note": note,
                    "now": now(),
                },
            )

    def unpin(self, object_type: str, external_id: str) -> bool:
        with self._c.connection() as con:
            rows = con.execute(
                "DELETE FROM match_pins WHERE object_type = $ot AND external_id = $ext RETURNING 1",
                {"ot": object_type, "ext": external_id},
            ).fetchall()
        return bool(rows)

    def pins(self, object_type: str | None = None) -> list[Pin]:
        with self._c.connection() as con:
            rows = con.execute(
                "SELECT object_type, external_id, hubspot_id, note FROM match_pins "
                "WHERE $ot IS NULL OR object_type = $ot ORDER BY object_type, external_id",
                {"ot": object_type},
            ).fetchall()
        return [Pin(*r) for r in rows]
