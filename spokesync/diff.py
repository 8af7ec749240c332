"""The field-level diff: desired state vs the snapshot, in DuckDB SQL.

:func:`plan_changes` builds desired state (:mod:`spokesync.desired`) in an in-memory DuckDB
connection over the warehouse views, attaches the state DB **read-only**, computes the change
set into an in-memory temp table, and **detaches** before returning. The returned
:class:`ChangePlan` therefore holds no handle on the state file: the push can write to the
store (write-through) while the plan is being iterated, in the same process. Close the plan
(or use it as a context manager) to free its memory.

While a store is open for writing in this process (a push, its writer thread), DuckDB refuses
a second attach of its file ("Unique file handle conflict"). ``plan_changes(..., store=…)``
therefore plans *inside the store's own DuckDB instance*: a cursor of the store's connection,
an in-memory working database attached to it (desired state, diff, plan), and the store's
tables read through views under the same ``st.`` names. That is how the sync plans the next
mapping while one pushes; the store's instance then holds the whole memory budget (cached pages
and working data, one limit) until the plan is closed.

Rules, per (record, property):

- warehouse-owned: send when the canonical value differs from the snapshot's — unless it is
  within the field's ``tolerance`` / ``resolution`` / ``buckets`` of it (:mod:`spokesync.tolerance`):
  such values are set aside in table ``tolerated`` and counted, never sent;
- no desired value: ``skip`` never sends; ``clear`` sends ``""`` only if HubSpot holds a value;
- hubspot-owned: send only when HubSpot's value is empty/absent (people's edits stand);
- as-of guard: never replace a snapshot value whose ``as_of`` is newer than the plan's;
- a record absent from the snapshot is first matched to an unowned HubSpot record
  (:mod:`spokesync.adoption`): one candidate → ``kind="adopt"``, diffed against that record's
  values (the external id is among the changes); several → left out of the plan (listed as
  ambiguous); none → new (``kind="create"``) with all its values.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import duckdb
import pyarrow as pa

from spokesync import warehouse
from spokesync.adoption import ADOPTION_TABLE, plan_adoption
from spokesync.canonical import configure_connection
from spokesync.changes import RecordChange
from spokesync.desired import (
    DESIRED_TABLE,
    ID_COLUMN,
    REJECTED_TABLE,
    DesiredStats,
    build_desired,
    desired_long_sql,
)
from spokesync.hubspot.redact import mask_email, mask_value
from spokesync.mapping.spec import MappingSpec, quote_identifier
from spokesync.memory import peak_rss_mb
from spokesync.plan_rules import RuleStats, apply_field_rules
from spokesync.rollout import Rollout
from spokesync.state.associations import LABELLED_LINK_SCHEMA
from spokesync.state.connection import host_plan, release_plan
from spokesync.state.store import StateStore, StateStoreBusy
from spokesync.tolerance import tolerated_sql
from spokesync.warehouse import sql_literal

PLAN_TABLE = "plan"
_EMPTY_LINKS = LABELLED_LINK_SCHEMA.append(pa.field("remove_stale", pa.bool_())).empty_table()


@dataclass(frozen=True, slots=True)
class AssociationLink:
    """One association to create, by external ids (see ``ChangePlan.associations``)."""

    from_object_type: str
    from_external_id: str
    to_object_type: str
    to_external_id: str
    association_type_id: int
    category: str
    remove_stale: bool = False  # the mapping archives this link once the record moves on


class ChangePlan:
    """The changes one mapping needs for one ``as_of``: counts, batches, a markdown summary."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        mapping: MappingSpec,
        as_of: dt.date,
        desired: DesiredStats,
        rollout: Rollout | None,
    ) -> None:
        self._con: duckdb.DuckDBPyConnection | None = con
        # planning inside the state store's instance: the working database's name, the store
        # file and its catalog (see the module doc); None for a plan of its own instance
        self._work_db: str | None = None
        self._host: tuple[Path, str] | None = None
        self.object_type = mapping.object_type
        self.mapping_version = mapping.version
        self.id_property = mapping.id.property
        self.association_specs = list(mapping.associations)
        self.spill_dir: Path | None = None  # DuckDB temp files (with a memory limit)
        self.desired_s = 0.0  # building the desired state (wall seconds)
        self.diff_s = 0.0  # the diff against the snapshot, adoption and field rules
        self.desired_peak_rss_mb = 0.0  # the process's peak memory once desired state was built
        self.as_of = as_of
        self.rollout = rollout
        self.desired = desired
        self.records_desired = desired.records
        self.duplicates = desired.duplicates
        self.rejected_ids = desired.rejected_ids
        row = con.execute(
            f"SELECT count(DISTINCT {ID_COLUMN}), "
            f"count(DISTINCT {ID_COLUMN}) FILTER (WHERE kind = 'create'), count(*), "
            f"count(*) FILTER (WHERE new_value = ''), "
            f"count(DISTINCT {ID_COLUMN}) FILTER (WHERE kind = 'adopt') FROM {PLAN_TABLE}"
        ).fetchall()[0]
        assert row is not None
        (
            self.records_changed,
            self.records_new,
            self.fields_changed,
            self.fields_cleared,
            self.records_adopted,
        ) = (int(v) for v in row)
        self.records_updated = self.records_changed - self.records_new - self.records_adopted
        (
            self.records_ambiguous,
            self.records_duplicated,
            self.records_recreated,
            self.records_left_archived,
            self.records_merged_away,  # merged in HubSpot into another of ours: held
        ) = con.execute(
            f"SELECT count(*) FILTER (WHERE decision = 'ambiguous'), "
            f"count(*) FILTER (WHERE decision = 'duplicate'), "
            f"count(*) FILTER (WHERE decision = 'recreate'), "
            f"count(*) FILTER (WHERE decision = 'left_archived'), "
            f"count(*) FILTER (WHERE decision = 'merged') FROM {ADOPTION_TABLE}"
        ).fetchall()[0]
        # records the fingerprint pre-filter could not rule out (compared field by field)
        self.records_compared = 0
        self.rules = RuleStats()  # forward-only moves blocked, fields withheld (plan_rules)
        # fields whose value differs but HubSpot holds a newer day's value (as-of guard)
        self.fields_held = 0
        self.held_newest_as_of: dt.date | None = None
        # differing values within their field's threshold, not sent (spokesync.tolerance)
        self.fields_within_tolerance = 0
        self.records_within_tolerance = 0  # records whose only changes were within it
        self.write_calls_saved = 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise RuntimeError("this change plan is closed")
        return self._con

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """Another connection to the plan's tables (a reader of its own)."""
        cur = self.con.cursor()
        if self._work_db is not None:
            cur.execute(f"USE {self._work_db}")
        return cur

    def close(self) -> None:
        if self._con is not None:
            if self._work_db is not None and self._host is not None:
                path, catalog = self._host
                try:
                    self._con.execute(f"USE {_quote_name(catalog)}")
                    self._con.execute(f"DETACH {self._work_db}")
                finally:
                    release_plan(path, self._con)
            self._con.close()
            self._con = None
        if self.spill_dir is not None:
            shutil.rmtree(self.spill_dir, ignore_errors=True)
            self.spill_dir = None

    def __enter__(self) -> ChangePlan:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ reading

    def rejected_rows(self) -> pa.Table:
        """Source rows the desired state rejected (empty id, non-finite number, duplicate id):
        ``external_id``, ``reason``, ``record`` (JSON of the row's values)."""
        return self.con.sql(
            f"SELECT external_id, reason, record FROM {REJECTED_TABLE} "
            "ORDER BY external_id NULLS FIRST, reason"
        ).to_arrow_table()

    def batches(self, size: int = 100) -> Iterator[list[RecordChange]]:
        """Changed records, ``size`` per list, in external-id order; each record appears once
        with all its changed properties. Streams Arrow batches; memory stays bounded."""
        if size < 1:
            raise ValueError("batch size must be at least 1")
        reader = (
            self.cursor()
            .sql(
                f"SELECT {ID_COLUMN}, hubspot_id, kind, property, new_value FROM {PLAN_TABLE} "
                f"ORDER BY {ID_COLUMN}, property"
            )
            .to_arrow_reader(8192)
        )
        out: list[RecordChange] = []
        cur_id: str | None = None
        cur_hid: str | None = None
        cur_kind = "update"
        props: dict[str, str] = {}
        for batch in reader:
            ids, hids, kinds, names, values = (batch.column(i).to_pylist() for i in range(5))
            for ext, hid, kind, name, value in zip(ids, hids, kinds, names, values, strict=True):
                if ext != cur_id:
                    if cur_id is not None:
                        out.append(self._change(cur_id, cur_hid, cur_kind, props))
                        if len(out) == size:
                            yield out
                            out = []
                    cur_id, cur_hid, cur_kind, props = ext, hid, kind, {}
                props[name] = value
        if cur_id is not None:
            out.append(self._change(cur_id, cur_hid, cur_kind, props))
        if out:
            yield out

    def _change(self, ext: str, hid: str | None, kind: str, props: dict[str, str]) -> RecordChange:
        return RecordChange(
            object_type=self.object_type,
            external_id=ext,
            hubspot_id=hid,
            properties=props,
            as_of=self.as_of,
            kind=kind if kind in ("create", "adopt") else "update",  # type: ignore[arg-type]
            canonical=True,  # new_value is the desired state's canonical form
        )

    def adoption_rows(self, decision: str | None = None) -> list[tuple[object, ...]]:
        """(external_id, hubspot_id, decision, rule, match_key, candidates, reason) of the
        records new to the snapshot that matched a HubSpot record (or were pinned)."""
        return self.con.execute(
            "SELECT external_id, hubspot_id, decision, rule, match_key, candidates, reason "
            f"FROM {ADOPTION_TABLE} WHERE $d IS NULL OR decision = $d ORDER BY external_id",
            {"d": decision},
        ).fetchall()

    def ambiguous_table(self) -> pa.Table:
        """The ambiguous matches and duplicates in HubSpot, for
        ``StateStore.matches.record_ambiguous``."""
        return self.con.sql(
            "SELECT external_id, rule, match_key, candidates, reason FROM "
            f"{ADOPTION_TABLE} WHERE decision IN ('ambiguous', 'duplicate', 'merged') "
            "ORDER BY external_id"
        ).to_arrow_table()

    def planned_ids(self) -> set[str]:
        """The external ids of the records this plan changes (what the push may send)."""
        rows = self.con.sql(f"SELECT DISTINCT {ID_COLUMN} FROM {PLAN_TABLE}").to_arrow_table()
        return set(rows.column(0).to_pylist())

    def desired_ids(self) -> pa.RecordBatchReader:
        """The external ids of every desired record (for ``StateStore.mark_verified``)."""
        return (
            self.cursor()
            .sql(f"SELECT {ID_COLUMN} AS external_id FROM {DESIRED_TABLE}")
            .to_arrow_reader(65536)
        )

    def planned_rows(self) -> pa.RecordBatchReader:
        """Rows for the ``planned_changes`` table (see ``StateStore.record_planned_changes``)."""
        return (
            self.cursor()
            .sql(
                f"SELECT $ot AS object_type, {ID_COLUMN} AS external_id, hubspot_id, property, "
                f"old_value, new_value, kind, as_of FROM {PLAN_TABLE} "
                f"ORDER BY {ID_COLUMN}, property",
                params={"ot": self.object_type},
            )
            .to_arrow_reader(8192)
        )

    def association_table(self, changed_only: bool = True) -> pa.Table:
        """Association links of the mapping's records (default: only records in this plan) as
        one Arrow table, in (target type, from id) order: ``from_type``, ``from_external_id``,
        ``to_type``, ``to_external_id``, ``type_id``, ``category``, ``label``,
        ``remove_stale``. Built in DuckDB: a first sync's millions of links never become
        Python objects."""
        where = (
            f" AND {ID_COLUMN} IN (SELECT {ID_COLUMN} FROM {PLAN_TABLE})" if changed_only else ""
        )
        parts, params = [], {"ot": self.object_type}
        for i, spec in enumerate(self.association_specs):
            col = quote_identifier(f"__assoc_{i}")
            parts.append(
                f"SELECT $ot AS from_type, {ID_COLUMN} AS from_external_id, $to{i} AS to_type, "
                f"{col} AS to_external_id, CAST($tid{i} AS INTEGER) AS type_id, "
                f"$cat{i} AS category, $label{i} AS label, $rm{i} AS remove_stale, "
                f"{i} AS spec FROM {DESIRED_TABLE} WHERE {col} IS NOT NULL{where}"
            )
            params |= {
                f"to{i}": spec.to_object_type,
                f"tid{i}": spec.association_type_id or 0,
                f"cat{i}": spec.category,
                f"label{i}": spec.label or "",
                f"rm{i}": spec.remove_stale,
            }
        if not parts:
            return _EMPTY_LINKS
        return (
            self.cursor()
            .sql(
                "SELECT * EXCLUDE (spec) FROM (" + " UNION ALL ".join(parts) + ") "
                "ORDER BY spec, from_external_id",
                params=params,
            )
            .to_arrow_table()
            .cast(_EMPTY_LINKS.schema)
        )

    def associations(self, changed_only: bool = True) -> list[AssociationLink]:
        """:meth:`association_table` as objects (small plans, tools and tests); resolve HubSpot
        ids with ``StateStore.hubspot_ids``. Re-creating an existing association is a no-op in
        HubSpot, so sending these is safe."""
        return [
            AssociationLink(
                from_object_type=r["from_type"],
                from_external_id=r["from_external_id"],
                to_object_type=r["to_type"],
                to_external_id=r["to_external_id"],
                association_type_id=r["type_id"],
                category=r["category"],
                remove_stale=r["remove_stale"],
            )
            for r in self.association_table(changed_only).to_pylist()
        ]

    def fields_changed_by_property(self) -> dict[str, int]:
        return dict(
            self.con.execute(
                f"SELECT property, count(*) FROM {PLAN_TABLE} GROUP BY property ORDER BY property"
            ).fetchall()
        )

    def as_metadata(self) -> dict[str, int | str]:
        """Counts for Dagster metadata and the CLI summary."""
        return {
            "object_type": self.object_type,
            "mapping_version": self.mapping_version,
            "as_of": self.as_of.isoformat(),
            "records_desired": self.records_desired,
            "records_changed": self.records_changed,
            "records_new": self.records_new,
            "records_updated": self.records_updated,
            "records_adopted": self.records_adopted,
            "records_ambiguous": self.records_ambiguous,
            "records_duplicated_in_hubspot": self.records_duplicated,
            "records_recreated": self.records_recreated,
            "records_left_archived": self.records_left_archived,
            "records_merged_away": self.records_merged_away,
            "fields_changed": self.fields_changed,
            "fields_cleared": self.fields_cleared,
            "duplicates": self.duplicates,
            "rejected_ids": self.rejected_ids,
            "records_compared": self.records_compared,
            "fields_held_newer": self.fields_held,
            "fields_within_tolerance": self.fields_within_tolerance,
            "records_within_tolerance": self.records_within_tolerance,
            "write_calls_saved": self.write_calls_saved,
            "rollout": self.rollout.describe() if self.rollout else "all records",
        }

    def held_line(self) -> str:
        """What the as-of guard held back, e.g. ``12 fields kept: newer values from 2026-01-30``."""
        if not self.fields_held:
            return "no fields held back by the as-of guard"
        return (
            f"{self.fields_held:,} fields kept: newer values from {self.held_newest_as_of} "
            f"(the as-of guard: an older day never replaces them)"
        )

    def tolerance_line(self) -> str:
        """What the fields' thresholds saved, e.g. ``1,989 records not written …``."""
        return (
            f"within tolerance, not sent: {self.fields_within_tolerance:,} fields; "
            f"{self.records_within_tolerance:,} records not written, "
            f"{self.write_calls_saved:,} write calls saved"
        )

    def within_tolerance_by_property(self) -> dict[str, int]:
        return dict(
            self.con.execute(
                f"SELECT property, count(*) FROM {TOLERATED_TABLE} GROUP BY property "
                "ORDER BY property"
            ).fetchall()
        )

    def summary_markdown(self, limit: int = 20) -> str:
        """Counts, changed fields per property and the first ``limit`` changed values."""
        m = self.as_metadata()
        lines = [
            f"### {self.object_type} — planned changes as of {m['as_of']} "
            f"(mapping {self.mapping_version})",
            "",
            f"- records desired: {self.records_desired}"
            + (f" (rollout: {m['rollout']})" if self.rollout else ""),
            f"- records to write: {self.records_changed} ({self.records_new} new, "
            + (f"{self.records_adopted} adopted, " if self.records_adopted else "")
            + f"{self.records_updated} updated)",
            f"- fields to write: {self.fields_changed} ({self.fields_cleared} cleared)",
            f"- duplicate ids dropped: {self.duplicates}; rows without id rejected: "
            f"{self.rejected_ids}",
        ]
        if self.fields_held:
            lines.append(f"- {self.held_line()}")
        if self.fields_within_tolerance:
            per = ", ".join(f"{p} {n:,}" for p, n in self.within_tolerance_by_property().items())
            lines.append(f"- {self.tolerance_line()} ({per})")
        if self.records_recreated or self.records_left_archived:
            lines.append(
                f"- archived in HubSpot: {self.records_recreated} re-created, "
                f"{self.records_left_archived} left alone (mapping `archived:`)"
            )
        if self.records_merged_away:
            lines.append(
                f"- merged in HubSpot into another of our records, held (not written): "
                f"{self.records_merged_away} (`spokesync state ambiguous`)"
            )
        if self.records_duplicated:
            lines.append(
                f"- records that another HubSpot record duplicates (reported, ours written): "
                f"{self.records_duplicated} (`spokesync state ambiguous`)"
            )
        if self.records_ambiguous:
            lines.append(
                f"- ambiguous matches, not written until resolved: {self.records_ambiguous} "
                "(`spokesync state ambiguous`)"
            )
        if self.desired.duplicate_samples:
            lines.append(f"- duplicate ids (first): {', '.join(self.desired.duplicate_samples)}")
        per_prop = self.fields_changed_by_property()
        if per_prop:
            lines += ["", "| property | changes |", "|---|---:|"]
            lines += [f"| {p} | {n} |" for p, n in per_prop.items()]
        rows = self.con.execute(
            f"SELECT {ID_COLUMN}, kind, property, old_value, new_value FROM {PLAN_TABLE} "
            f"ORDER BY {ID_COLUMN}, property LIMIT $lim",
            {"lim": limit},
        ).fetchall()
        if rows:
            lines += [
                "",
                f"First {len(rows)} changed values:",
                "",
                "| external id | kind | property | HubSpot now | new value |",
                "|---|---|---|---|---|",
            ]
            lines += [
                f"| {_md(mask_email(e))} | {k} | {p} | {_md(mask_value(p, o))} | "
                f"{_md(mask_value(p, n)) if n != '' else '(clear)'} |"
                for e, k, p, o, n in rows
            ]
        return "\n".join(lines)


def _md(value: object) -> str:
    if value is None:
        return "∅"
    s = str(value).replace("|", "\\|").replace("\n", " ")
    return (s[:60] + "…") if len(s) > 60 else s


# Phase 1 (prune): one 64-bit fingerprint per record on each side. The store keeps each
# record's fingerprint over all its values (``snapshot_record``); the diff corrects it for the
# properties this mapping does not compare by value (hubspot-owned ones, and stale properties no
# longer mapped) with one selective scan. The desired side is computed per row of the wide
# desired table. A record whose fingerprints agree, and whose hubspot-owned fields HubSpot
# already fills, cannot have a change, so phase 2 only joins the (few) candidate records field
# by field. Fingerprints only prune: phase 2 applies the exact rules, so a false candidate
# costs time, never a wrong write.
SNAPSHOT_FP_SQL = """
CREATE OR REPLACE TABLE snap_fp AS
SELECT r.external_id, r.hubspot_id,
       xor(r.fp, coalesce(x.fp, 0::UBIGINT)) AS fp,
       coalesce(x.h_mask, 0::UBIGINT) AS mask
FROM st.snapshot_record r
LEFT JOIN (
    SELECT external_id,
           bit_xor(hash(property, value)) AS fp,
           bit_or(coalesce(1::UBIGINT << (list_position({h_props}, property) - 1), 0::UBIGINT))
               AS h_mask
    FROM st.snapshot
    WHERE object_type = $ot AND value IS NOT NULL
      AND (list_contains({h_props}, property) OR NOT list_contains({w_props}, property))
    GROUP BY external_id
) x ON x.external_id = r.external_id
WHERE r.object_type = $ot
"""

# The candidates keep their whole desired row: phase 2 reads them, not ``desired`` again.
CANDIDATES_SQL = """
CREATE OR REPLACE TABLE candidates AS
SELECT d.* EXCLUDE (__fp, __h_mask)
FROM (SELECT *, {des_fp} AS __fp, {des_h_mask} AS __h_mask FROM desired) d
LEFT JOIN snap_fp s ON s.external_id = d.external_id
WHERE s.external_id IS NULL
   OR s.fp <> d.__fp
   OR (d.__h_mask & ~s.mask) <> 0
"""

DIFF_SQL = """
CREATE OR REPLACE TABLE changed AS
WITH d AS (
{desired_long}
),
adopted AS (SELECT external_id, hubspot_id FROM adoption WHERE decision = 'adopt'),
s AS (
    SELECT external_id, property, value, as_of FROM st.snapshot
    WHERE object_type = $ot AND external_id IN (SELECT external_id FROM candidates)
    UNION ALL  -- an adopted record is compared with the HubSpot record it adopts
    SELECT a.external_id, u.property, u.value, NULL FROM adopted a
    JOIN st.portal_unowned u ON u.object_type = $ot AND u.hubspot_id = a.hubspot_id
    UNION ALL
    SELECT a.external_id, x.property, x.value, NULL FROM adopted a
    JOIN st.snapshot x ON x.object_type = $ot AND x.hubspot_id = a.hubspot_id
),
newer AS (  -- records a run for a later day confirmed whole: an older day never touches them
    SELECT external_id FROM st.record_verified
    WHERE object_type = $ot AND verified_as_of > $as_of
      AND external_id IN (SELECT external_id FROM candidates)
)
SELECT d.external_id, d.property, coalesce(d.value, '') AS new_value, s.value AS old_value,
       {tolerated} AS tolerated
FROM d LEFT JOIN s ON s.external_id = d.external_id AND s.property = d.property
WHERE (s.as_of IS NULL OR s.as_of <= $as_of)
  AND d.external_id NOT IN (SELECT external_id FROM newer)
  AND d.external_id NOT IN (SELECT external_id FROM adoption
                            WHERE decision IN ('ambiguous', 'left_archived', 'merged'))
  AND CASE
        WHEN d.owner = 'hubspot' THEN s.value IS NULL AND d.value IS NOT NULL
        WHEN d.value IS NULL THEN d.null_policy = 'clear' AND s.value IS NOT NULL
        ELSE s.value IS DISTINCT FROM d.value
      END
"""

# The as-of guard's work, for the plan's summary: fields whose value differs but that HubSpot
# holds from a newer day (the value, or the whole record, was confirmed for a later as_of).
HELD_SQL = """
WITH d AS (
{desired_long}
),
s AS (
    SELECT external_id, property, value, as_of FROM st.snapshot
    WHERE object_type = $ot AND external_id IN (SELECT external_id FROM candidates)
),
newer AS (
    SELECT external_id, verified_as_of FROM st.record_verified
    WHERE object_type = $ot AND verified_as_of > $as_of
      AND external_id IN (SELECT external_id FROM candidates)
)
SELECT count(*), max(greatest(coalesce(s.as_of, n.verified_as_of), coalesce(n.verified_as_of, s.as_of)))
FROM d LEFT JOIN s ON s.external_id = d.external_id AND s.property = d.property
LEFT JOIN newer n ON n.external_id = d.external_id
WHERE (s.as_of > $as_of OR n.external_id IS NOT NULL)
  AND CASE
        WHEN d.owner = 'hubspot' THEN s.value IS NULL AND d.value IS NOT NULL
        WHEN d.value IS NULL THEN d.null_policy = 'clear' AND s.value IS NOT NULL
        ELSE s.value IS DISTINCT FROM d.value
      END
"""

PLAN_SQL = """
CREATE OR REPLACE TABLE plan AS
SELECT c.external_id, coalesce(k.hubspot_id, a.hubspot_id) AS hubspot_id, c.property,
       c.old_value, c.new_value,
       CASE WHEN k.external_id IS NOT NULL THEN 'update'
            WHEN a.external_id IS NOT NULL THEN 'adopt' ELSE 'create' END AS kind,
       CAST($as_of AS DATE) AS as_of
FROM changed c LEFT JOIN snap_fp k ON k.external_id = c.external_id
LEFT JOIN (SELECT external_id, hubspot_id FROM adoption WHERE decision = 'adopt') a
    ON a.external_id = c.external_id
ORDER BY c.external_id, c.property
"""

# Values the diff found different but within their field's threshold (spokesync.tolerance):
# kept for the summary and `spokesync explain`, never sent; the snapshot keeps HubSpot's value.
TOLERATED_TABLE = "tolerated"
TOLERATED_SQL = f"""
CREATE OR REPLACE TABLE {TOLERATED_TABLE} AS
SELECT external_id, property, old_value, new_value FROM changed WHERE tolerated
"""

# Calls a threshold saved: records whose only changes were within tolerance, and the write
# calls (⌈records / batch⌉ per push call kind: upserts, and updates of adopted records) they
# would have added to this plan's.
WRITE_BATCH = 100
SAVED_SQL = f"""
WITH only_t AS (
    SELECT DISTINCT t.external_id,
           CASE WHEN a.external_id IS NULL THEN 'upsert' ELSE 'adopt' END AS grp
    FROM {TOLERATED_TABLE} t
    LEFT JOIN (SELECT external_id FROM adoption WHERE decision = 'adopt') a USING (external_id)
    WHERE t.external_id NOT IN (SELECT external_id FROM plan)
),
held AS (SELECT grp, count(*) AS n FROM only_t GROUP BY grp),
planned AS (
    SELECT CASE WHEN kind = 'adopt' THEN 'adopt' ELSE 'upsert' END AS grp,
           count(DISTINCT external_id) AS n
    FROM plan GROUP BY grp
)
SELECT (SELECT count(*) FROM {TOLERATED_TABLE}), (SELECT count(*) FROM only_t),
       (SELECT coalesce(sum((coalesce(p.n, 0) + h.n + $size - 1) // $size
                            - (coalesce(p.n, 0) + $size - 1) // $size), 0)
        FROM held h LEFT JOIN planned p USING (grp))
"""

MAX_FINGERPRINT_PROPERTIES = 63


def _fingerprint_sql(mapping: MappingSpec) -> tuple[str, str]:
    """(snapshot fingerprint SQL, candidates SQL) for ``mapping``.

    Fingerprint = bit_xor of ``hash(property, value)`` over the record's non-NULL values of
    warehouse-owned properties (the id property included). Hubspot-owned properties get one
    bit each in a mask of "HubSpot holds a value".
    """
    props = mapping.managed_properties
    owners = {mapping.id.property: "warehouse"} | {f.property: f.owner for f in mapping.fields}
    w_props = [p for p in props if owners[p] == "warehouse"]
    h_props = [p for p in props if owners[p] == "hubspot"]
    h_bits = {p: 1 << i for i, p in enumerate(h_props)}

    def sql_list(ps: list[str]) -> str:
        return "[" + ", ".join(f"'{p}'" for p in ps) + "]::VARCHAR[]"

    snap = SNAPSHOT_FP_SQL.format(h_props=sql_list(h_props), w_props=sql_list(w_props))

    def col(p: str) -> str:
        return ID_COLUMN if p == mapping.id.property else quote_identifier(p)

    fp_terms = [
        f"CASE WHEN {col(p)} IS NULL THEN 0::UBIGINT ELSE hash('{p}', {col(p)}) END"
        for p in w_props
    ]
    des_fp = fp_terms[0]
    for term in fp_terms[1:]:
        des_fp = f"xor({des_fp}, {term})"
    h_terms = [f"CASE WHEN {col(p)} IS NULL THEN 0 ELSE {b} END" for p, b in h_bits.items()]
    des_h_mask = "CAST(" + (" + ".join(h_terms) or "0") + " AS UBIGINT)"
    cand = CANDIDATES_SQL.format(des_fp=des_fp, des_h_mask=des_h_mask)
    return snap, cand


def _quote_name(name: str) -> str:
    """Quote a catalog or table name DuckDB gave (the store file's stem may hold any
    character; these are not mapping identifiers)."""
    return '"' + name.replace('"', '""') + '"'


def _hosted_connection(
    store: StateStore, warehouse_dir: Path
) -> tuple[duckdb.DuckDBPyConnection, str, str]:
    """A cursor of the open ``store``'s connection, using a fresh in-memory working database
    with the warehouse views and, in its schema ``st``, a view per store table (so the plan's
    SQL reads ``st.snapshot`` as it does from an attached file). Returns (cursor, working
    database, the store's catalog)."""
    con = store.connection.cursor()
    work = f"spokesync_plan_{uuid.uuid4().hex[:12]}"
    host_plan(store.path, con)
    try:
        configure_connection(con)
        row = con.execute("SELECT current_database()").fetchall()[0]
        catalog = str(row[0])
        tables = con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = $c "
            "AND schema_name = 'main' ORDER BY table_name",
            {"c": catalog},
        ).fetchall()
        con.execute(f"ATTACH ':memory:' AS {work}")
        con.execute(f"USE {work}")
        con.execute("CREATE SCHEMA st")
        source = _quote_name(catalog)
        for (table,) in tables:
            name = _quote_name(table)
            con.execute(f"CREATE VIEW st.{name} AS SELECT * FROM {source}.main.{name}")
        warehouse.create_views(con, warehouse_dir)
    except BaseException:
        release_plan(store.path, con)
        con.close()
        raise
    return con, work, catalog


def plan_changes(
    store_path: Path,
    warehouse_dir: Path,
    mapping: MappingSpec,
    as_of: dt.date,
    rollout: Rollout | None = None,
    *,
    memory_limit: str | None = None,
    store: StateStore | None = None,
) -> ChangePlan:
    """Diff ``mapping``'s desired state for ``as_of`` against the snapshot in ``store_path``.

    The state DB is attached read-only only while the change set is computed (see module doc).
    ``memory_limit`` (e.g. ``"1GB"``) caps DuckDB's memory; beyond it DuckDB spills to a
    private temporary directory that ``close()`` removes.

    ``store``: the open store of ``store_path``; the plan is then made in its DuckDB instance
    (see module doc), so it can run while the store is being written (another mapping's push),
    e.g. in a thread of its own. ``memory_limit`` does not apply then: the instance has the
    whole ``SPOKESYNC_MEMORY_LIMIT``.
    """
    host: tuple[str, str] | None = None
    if store is None:
        StateStore(store_path).ensure_schema()
        con = warehouse.connect(Path(warehouse_dir))
    else:
        con, work_db, catalog = _hosted_connection(store, Path(warehouse_dir))
        host = (work_db, catalog)
    spill_dir: Path | None = None
    try:
        # Every result that needs an order says so (ORDER BY); letting DuckDB drop insertion
        # order makes the big intermediate tables cheaper to build (a parallel CREATE TABLE AS
        # instead of an order-keeping batch insert). On the store's instance only for this
        # plan's own cursor (SESSION): the store's connections keep the global setting.
        con.execute(f"SET {'SESSION ' if host else ''}preserve_insertion_order = false")
        if memory_limit and host is None:
            spill_dir = Path(tempfile.mkdtemp(prefix="spokesync-diff-"))
            con.execute(f"SET memory_limit = {sql_literal(memory_limit)}")
            con.execute(f"SET temp_directory = {sql_literal(str(spill_dir))}")
        started = time.perf_counter()
        stats = build_desired(con, mapping, as_of, rollout)
        desired_s = time.perf_counter() - started
        desired_peak = peak_rss_mb()
        if host is None:
            try:
                con.execute(f"ATTACH {sql_literal(str(store_path))} AS st (READ_ONLY)")
            except duckdb.IOException as e:
                raise StateStoreBusy(
                    f"state store {store_path} cannot be read (another process is writing): {e}"
                ) from e
            except duckdb.Error as e:
                if "file handle conflict" not in str(e).lower():
                    raise
                raise StateStoreBusy(
                    f"state store {store_path} is open in this process: plan inside it "
                    f"(plan_changes(..., store=the open store)): {e}"
                ) from e
        try:
            params = {"ot": mapping.object_type, "as_of": as_of}
            h_count = sum(1 for f in mapping.fields if f.owner == "hubspot")
            if h_count <= MAX_FINGERPRINT_PROPERTIES:
                snap_sql, cand_sql = _fingerprint_sql(mapping)
                con.execute(snap_sql, {"ot": mapping.object_type})
                con.execute(cand_sql)
            else:  # too many hubspot-owned properties for a 64-bit mask: compare every record
                con.execute(
                    "CREATE OR REPLACE TABLE snap_fp AS SELECT external_id, "
                    "any_value(hubspot_id) AS hubspot_id FROM st.snapshot "
                    "WHERE object_type = $ot GROUP BY external_id",
                    {"ot": mapping.object_type},
                )
                con.execute("CREATE OR REPLACE TABLE candidates AS SELECT * FROM desired")
            plan_adoption(con, mapping)
            desired_long = desired_long_sql(mapping, table="candidates")
            tol_sql, tol_params = tolerated_sql(mapping)
            con.execute(
                DIFF_SQL.format(desired_long=desired_long, tolerated=tol_sql), params | tol_params
            )
            held = con.execute(HELD_SQL.format(desired_long=desired_long), params).fetchall()[0]
            con.execute(TOLERATED_SQL)  # within their field's threshold: set aside, not sent
            con.execute("DELETE FROM changed WHERE tolerated")
            con.execute(PLAN_SQL, {"as_of": as_of})
            rules = apply_field_rules(con, mapping)
            saved = con.execute(SAVED_SQL, {"size": WRITE_BATCH}).fetchall()[0]
        finally:
            if host is None:
                con.execute("DETACH st")
        row = con.execute("SELECT count(*) FROM candidates").fetchall()[0]
        for table in ("changed", "candidates", "snap_fp"):
            con.execute(f"DROP TABLE {table}")
        change_plan = ChangePlan(con, mapping, as_of, stats, rollout)
        if host is not None and store is not None:
            change_plan._work_db, change_plan._host = host[0], (store.path, host[1])
        change_plan.spill_dir = spill_dir
        change_plan.rules = rules
        change_plan.records_compared = int(row[0]) if row else 0
        change_plan.fields_held = int(held[0] or 0)
        change_plan.held_newest_as_of = held[1]
        change_plan.desired_s = desired_s
        change_plan.desired_peak_rss_mb = desired_peak
        change_plan.diff_s = time.perf_counter() - started - desired_s
        change_plan.fields_within_tolerance = int(saved[0] or 0)
        change_plan.records_within_tolerance = int(saved[1] or 0)
        change_plan.write_calls_saved = int(saved[2] or 0)
        return change_plan
    except BaseException:
        if host is not None and store is not None:
            with contextlib.suppress(duckdb.Error):
                con.execute(f"USE {_quote_name(host[1])}")
                con.execute(f"DETACH {host[0]}")
            release_plan(store.path, con)
        con.close()
        if spill_dir is not None:
            shutil.rmtree(spill_dir, ignore_errors=True)
        raise
