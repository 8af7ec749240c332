"""The snapshot of what HubSpot holds, per-record fingerprints, and the as-of verification.

``snapshot`` holds one row per (object type, external id, managed property): the canonical
value, its ``as_of`` and origin (``pushed``: confirmed by a write; ``hubspot``: read by a full
refresh). ``snapshot_record`` holds one fingerprint per record, kept in step in the same
transactions; the diff's pre-filter reads it instead of aggregating the whole snapshot.
``record_verified`` holds the newest ``as_of`` at which each whole record was in step with the
warehouse, for the as-of guard.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from spokesync.canonical import canonical, sql_canonical
from spokesync.changes import ConfirmedWrite
from spokesync.state import dead_letters, history, modified
from spokesync.state.connection import Connection, now

# The fingerprint of one record, over snapshot rows ``s``.
RECORD_FP_SQL = (
    "coalesce(bit_xor(hash(s.property, s.value)) FILTER (WHERE s.value IS NOT NULL), 0::UBIGINT)"
)

DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS snapshot (
        object_type VARCHAR NOT NULL,
        external_id VARCHAR NOT NULL,
        hubspot_id VARCHAR,
        property VARCHAR NOT NULL,
        value VARCHAR,              -- canonical value; NULL = HubSpot holds no value
        as_of DATE,                 -- partition date the value was computed for (NULL: unknown)
        origin VARCHAR NOT NULL,    -- 'pushed' (confirmed by a write) | 'hubspot' (full refresh)
        updated_at TIMESTAMPTZ NOT NULL,
        run_id VARCHAR
    )""",
    # One row per snapshot record: its HubSpot id and a fingerprint of its values. Kept in step
    # with ``snapshot`` in the same transactions; lets the diff rule out unchanged records
    # without aggregating the whole snapshot.
    """CREATE TABLE IF NOT EXISTS snapshot_record (
        object_type VARCHAR NOT NULL,
        external_id VARCHAR NOT NULL,
        hubspot_id VARCHAR,
        fp UBIGINT NOT NULL         -- bit_xor(hash(property, value)) over non-NULL values
    )""",
    # The newest as_of at which a whole record was confirmed in step with the warehouse (pushed
    # or already equal). The as-of guard uses it: a backfill of an older day never changes a
    # record that a newer run verified, even where that run had nothing to write.
    """CREATE TABLE IF NOT EXISTS record_verified (
        object_type VARCHAR NOT NULL,
        external_id VARCHAR NOT NULL,
        verified_as_of DATE NOT NULL
    )""",
)

# Confirmed values as the push reports them (``raw``: the value sent); the store canonicalises
# them in DuckDB (vectorised, off the GIL) with the same rules as the diff.
CONFIRMED_SCHEMA = pa.schema(
    [
        ("external_id", pa.string()),
        ("hubspot_id", pa.string()),
        ("property", pa.string()),
        ("raw", pa.string()),
        ("as_of", pa.date32()),
        ("correlation_id", pa.string()),
        ("event_id", pa.string()),
        ("canonical", pa.bool_()),  # raw is canonical already (the plan's value): kept as is
    ]
)
_REFRESH_CHUNK = 50_000


@dataclass(frozen=True, slots=True)
class DriftedValue:
    external_id: str
    property: str
    snapshot_value: str | None
    hubspot_value: str | None


@dataclass(slots=True)
class DriftReport:
    """What a full refresh found: values people changed in HubSpot since we last saw them."""

    object_type: str
    records_read: int = 0
    records_without_id: int = 0  # HubSpot objects without a value for the id property (not ours)
    values_drifted: int = 0
    records_drifted: int = 0
    records_missing: int = 0  # in the snapshot but no longer in HubSpot (deleted/merged there)
    samples: list[DriftedValue] = field(default_factory=list)

    def as_metadata(self) -> dict[str, int | str]:
        return {
            "object_type": self.object_type,
            "records_read": self.records_read,
            "records_without_id": self.records_without_id,
            "values_drifted": self.values_drifted,
            "records_drifted": self.records_drifted,
            "records_missing": self.records_missing,
        }

    def to_markdown(self) -> str:
        lines = [
            f"**{self.object_type}** full refresh: {self.records_read} records read, "
            f"{self.values_drifted} values drifted on {self.records_drifted} records, "
            f"{self.records_missing} records missing in HubSpot.",
        ]
        if self.samples:
            lines += ["", "| external id | property | snapshot | HubSpot |", "|---|---|---|---|"]
            lines += [
                f"| {s.external_id} | {s.property} | {_md(s.snapshot_value)} | "
                f"{_md(s.hubspot_value)} |"
                for s in self.samples
            ]
        return "\n".join(lines)


def _md(value: object) -> str:
    if value is None:
        return "∅"
    s = str(value).replace("|", "\\|").replace("\n", " ")
    return (s[:60] + "…") if len(s) > 60 else s


def _snapshot_rows(
    records: Iterable[Mapping[str, Any]],
    id_property: str,
    props: list[str],
    types: Mapping[str, str],
    report: DriftReport,
    seen: set[str],
) -> Iterable[tuple[str, str | None, str, str | None]]:
    """(external id, HubSpot id, property, canonical value) per property of each record read,
    counting reads and id-less records in ``report``; the first record of an external id wins."""
    id_form = types.get(id_property, "email" if id_property == "email" else "string")
    for rec in records:
        report.records_read += 1
        values = rec.get("properties") or {}
        ext = canonical(id_form, values.get(id_property))
        if ext is None:
            report.records_without_id += 1
            continue
        if ext in seen:
            continue
        seen.add(ext)
        hid = str(rec.get("id")) if rec.get("id") is not None else None
        for prop in props:
            yield ext, hid, prop, canonical(types.get(prop, "string"), values.get(prop))


def rebuild_record_fingerprints(con: duckdb.DuckDBPyConnection, object_type: str | None) -> None:
    """Recompute ``snapshot_record`` of one object type (all when ``None``) from ``snapshot``."""
    con.execute(
        "DELETE FROM snapshot_record WHERE $ot IS NULL OR object_type = $ot",
        {"ot": object_type},
    )
    con.execute(
        "INSERT INTO snapshot_record SELECT s.object_type, s.external_id, "
        f"any_value(s.hubspot_id), {RECORD_FP_SQL} FROM snapshot s "
        "WHERE $ot IS NULL OR s.object_type = $ot GROUP BY ALL ORDER BY ALL",
        {"ot": object_type},
    )


@dataclass
class ConfirmedSegment:
    """Confirmed values of one object type in which no record appears twice."""

    object_type: str
    columns: dict[str, list[Any]] = field(
        default_factory=lambda: {k: [] for k in CONFIRMED_SCHEMA.names}
    )
    records: dict[str, str] = field(default_factory=dict)  # external id -> HubSpot id
    properties: set[str] = field(default_factory=set)

    def values(self) -> pa.Table:
        return pa.table(self.columns, schema=CONFIRMED_SCHEMA)

    def ids(self) -> pa.Table:
        return pa.table(
            {
                "external_id": pa.array(list(self.records), pa.string()),
                "hubspot_id": pa.array(list(self.records.values()), pa.string()),
            }
        )


def confirmed_segments(
    writes: Iterable[ConfirmedWrite], types: Mapping[str, Mapping[str, str]]
) -> list[ConfirmedSegment]:
    """The confirmed writes (of one or many batches, in order) as segments to save one after
    another: a record confirmed again starts a new segment, so each segment's rows are
    unique per (record, property) and the value history chains old → new exactly."""
    done: list[ConfirmedSegment] = []
    current: dict[str, ConfirmedSegment] = {}
    for w in writes:
        seg = current.get(w.object_type)
        if seg is not None and w.external_id in seg.records:
            done.extend(current.values())
            current, seg = {}, None
        if seg is None:
            seg = current[w.object_type] = ConfirmedSegment(w.object_type)
        managed = types.get(w.object_type)
        seg.records[w.external_id] = w.hubspot_id
        cols = seg.columns
        for prop, value in w.properties.items():
            if managed is not None and prop not in managed:
                continue
            seg.properties.add(prop)
            cols["external_id"].append(w.external_id)
            cols["hubspot_id"].append(w.hubspot_id)
            cols["property"].append(prop)
            cols["raw"].append(None if value is None else str(value))
            cols["as_of"].append(w.as_of)
            cols["correlation_id"].append(w.correlation_id)
            cols["event_id"].append(w.event_id)
            cols["canonical"].append(w.canonical)
    done.extend(current.values())
    return done


def _canonical_value_sql(
    properties: Iterable[str], forms: Mapping[str, str] | None
) -> tuple[str, dict[str, list[str]]]:
    """The SQL of column ``raw`` canonicalised by each property's form, and its parameters."""
    by_form: dict[str, list[str]] = {}
    for prop in sorted(properties):
        by_form.setdefault((forms or {}).get(prop, "string"), []).append(prop)

    def one(form: str) -> str:
        # try(): a value SQL cannot read (e.g. "" for a date, a clear) becomes NULL here and
        # is settled by the Python rules afterwards (see ``write_confirmed``).
        return f"try({sql_canonical(form, 'c.raw', 'VARCHAR')})"

    # A value the plan canonicalised is its own canonical form ('' = a clear: no value); the
    # rules run only on the others (SQL's CASE evaluates a branch only for its rows).
    trusted = "WHEN c.canonical THEN NULLIF(c.raw, '')"
    if len(by_form) <= 1:
        (form,) = by_form or {"string": []}
        return f"CASE {trusted} ELSE {one(form)} END", {}
    params = {f"form_{n}": props for n, props in enumerate(by_form.values())}
    whens = " ".join(
        f"WHEN list_contains($form_{n}, c.property) THEN {one(form)}"
        for n, form in enumerate(by_form)
    )
    return f"CASE {trusted} {whens} END", params


def _settle_unread_values(con: duckdb.DuckDBPyConnection, forms: Mapping[str, str] | None) -> None:
    """Values the SQL rules left NULL though they hold text: canonicalise them in Python, the
    reference (Python and SQL agree wherever SQL gives a value; SQL gives up on some inputs
    Python reads, such as epoch milliseconds for a datetime)."""
    rows = con.execute(
        "SELECT DISTINCT property, raw FROM confirmed WHERE value IS NULL AND trim(raw) <> ''"
    ).fetchall()
    if not rows:
        return
    fixed = pa.table(
        {
            "property": pa.array([p for p, _ in rows], pa.string()),
            "raw": pa.array([r for _, r in rows], pa.string()),
            "value": pa.array(
                [canonical((forms or {}).get(p, "string"), r) for p, r in rows], pa.string()
            ),
        }
    )
    con.register("settled", fixed)
    con.execute(
        "UPDATE confirmed SET value = f.value FROM settled f WHERE f.property = "
        "confirmed.property AND f.raw = confirmed.raw AND confirmed.value IS NULL"
    )
    con.unregister("settled")


def write_confirmed(
    con: duckdb.DuckDBPyConnection,
    segment: ConfirmedSegment,
    forms: Mapping[str, str] | None,
    run_id: str,
) -> None:
    """Write-through of confirmed values, inside the caller's transaction: the value history
    takes old → new, the snapshot takes exactly what HubSpot confirmed (origin ``pushed``,
    canonical by ``forms``), fingerprints follow, and open dead letters of those records are
    resolved.

    The snapshot is read once (the old values, range-pruned); the fingerprints are updated by
    XOR-ing out the old values' hashes and in the new ones' (``bit_xor`` is its own inverse),
    so the touched records' rows are not aggregated again."""
    if not segment.records:
        return
    object_type = segment.object_type
    ids = segment.ids()
    con.register("confirmed_raw", segment.values())
    con.register("ids", ids)
    try:
        # Explicit id-range predicates let DuckDB skip row groups by their zone maps (the diff
        # emits changes in external-id order, so batches cover narrow ranges) instead of
        # probing the whole snapshot for every batch.
        id_col = ids.column("external_id")
        rng = {"ot": object_type, "lo": pc.min(id_col).as_py(), "hi": pc.max(id_col).as_py()}
        value_sql, params = _canonical_value_sql(segment.properties, forms)
        con.execute(
            "CREATE OR REPLACE TEMP TABLE confirmed AS SELECT c.external_id, c.hubspot_id, "
            f"c.property, c.raw, {value_sql} AS value, c.as_of, c.correlation_id, c.event_id, "
            "s.value AS old_value, s.external_id IS NOT NULL AS known "
            "FROM confirmed_raw c LEFT JOIN ("
            "  SELECT external_id, property, value FROM snapshot WHERE object_type = $ot "
            "  AND external_id >= $lo AND external_id <= $hi"
            ") s ON s.external_id = c.external_id AND s.property = c.property",
            {**rng, **params},
        )
        if not all(segment.columns["canonical"]):  # the plan's values are never left unread
            _settle_unread_values(con, forms)
        in_range = (
            "snapshot.object_type = $ot AND snapshot.external_id >= $lo "
            "AND snapshot.external_id <= $hi"
        )
        if segment.properties:
            history.record(con, object_type, run_id)
            (known,) = con.execute("SELECT count(*) FROM confirmed WHERE known").fetchall()[0]
            if known:
                con.execute(
                    f"DELETE FROM snapshot USING confirmed c WHERE {in_range} AND c.known "
                    "AND snapshot.external_id = c.external_id AND snapshot.property = c.property",
                    rng,
                )
            con.execute(
                "INSERT INTO snapshot SELECT $ot, external_id, hubspot_id, property, value, "
                "as_of, 'pushed', $now, $run FROM confirmed",
                {"ot": object_type, "now": now(), "run": run_id},
            )
        # Fingerprints (and HubSpot ids) of the touched records, from what they were.
        fp_range = (
            "snapshot_record.object_type = $ot AND snapshot_record.external_id >= $lo "
            "AND snapshot_record.external_id <= $hi"
        )
        con.execute(
            "CREATE OR REPLACE TEMP TABLE touched AS SELECT i.external_id, i.hubspot_id, "
            "r.hubspot_id AS old_hubspot_id, r.external_id IS NOT NULL AS had_record, "
            "xor(coalesce(r.fp, 0::UBIGINT), coalesce(d.delta, 0::UBIGINT)) AS fp "
            "FROM ids i LEFT JOIN (SELECT * FROM snapshot_record WHERE "
            f"{fp_range}) r ON r.external_id = i.external_id "
            "LEFT JOIN (SELECT external_id, xor("
            "  coalesce(bit_xor(hash(property, old_value)) FILTER (old_value IS NOT NULL), 0),"
            "  coalesce(bit_xor(hash(property, value)) FILTER (value IS NOT NULL), 0)"
            ")::UBIGINT AS delta FROM confirmed GROUP BY external_id"
            ") d ON d.external_id = i.external_id "
            "WHERE r.external_id IS NOT NULL OR d.external_id IS NOT NULL",
            rng,
        )
        # A record's HubSpot id can change (re-created, merged): keep its other rows in step.
        (moved,) = con.execute(
            "SELECT count(*) FROM touched WHERE had_record "
            "AND old_hubspot_id IS DISTINCT FROM hubspot_id"
        ).fetchall()[0]
        if moved:
            con.execute(
                f"UPDATE snapshot SET hubspot_id = t.hubspot_id FROM touched t WHERE {in_range} "
                "AND snapshot.external_id = t.external_id "
                "AND snapshot.hubspot_id IS DISTINCT FROM t.hubspot_id",
                rng,
            )
        con.execute(
            f"DELETE FROM snapshot_record USING touched t WHERE {fp_range} "
            "AND snapshot_record.external_id = t.external_id",
            rng,
        )
        con.execute(
            "INSERT INTO snapshot_record SELECT $ot, external_id, hubspot_id, fp FROM touched",
            {"ot": object_type},
        )
        dead_letters.resolve(con, object_type)
        con.execute("DROP TABLE confirmed")
        con.execute("DROP TABLE touched")
    finally:
        # After a failed statement the transaction is aborted and these would raise too,
        # hiding the real error; the caller rolls back, a later register replaces them.
        with contextlib.suppress(duckdb.Error):
            con.unregister("confirmed_raw")
            con.unregister("ids")


def save_confirmed(
    con: duckdb.DuckDBPyConnection,
    writes: Iterable[ConfirmedWrite],
    types: Mapping[str, Mapping[str, str]],
    run_id: str,
) -> None:
    """Write-through of confirmed writes (one batch or many) inside the caller's transaction,
    with HubSpot's ``updatedAt`` of each (:mod:`spokesync.state.modified`)."""
    writes = list(writes)
    for segment in confirmed_segments(writes, types):
        write_confirmed(con, segment, types.get(segment.object_type), run_id)
    modified.record_writes(con, writes)


def _measure_drift(
    con: duckdb.DuckDBPyConnection,
    report: DriftReport,
    params: dict[str, object],
    sample_limit: int,
) -> None:
    """Drift of ``incoming`` (the values read from HubSpot) against the snapshot of
    ``params["ot"]``: counts and the first ``sample_limit`` drifted values, into ``report``."""
    drifted = (
        "FROM snapshot s JOIN incoming i ON s.external_id = i.external_id "
        "AND s.property = i.property WHERE s.object_type = $ot AND s.value IS DISTINCT FROM i.value"
    )
    report.values_drifted, report.records_drifted = con.execute(
        f"SELECT count(*), count(DISTINCT s.external_id) {drifted}", params
    ).fetchall()[0]
    report.samples = [
        DriftedValue(*row)
        for row in con.execute(
            f"SELECT s.external_id, s.property, s.value, i.value {drifted} "
            "ORDER BY s.external_id, s.property LIMIT $lim",
            {**params, "lim": sample_limit},
        ).fetchall()
    ]


class SnapshotStore:
    """Snapshot reads, full-refresh replace, fingerprints and as-of verification."""

    def __init__(self, connection: Connection, types: dict[str, dict[str, str]]) -> None:
        self._c = connection
        self._types = types

    def record_confirmed(self, writes: list[ConfirmedWrite], run_id: str) -> None:
        """Write-through of one batch (see :func:`write_confirmed`), one transaction."""
        if not writes:
            return
        with self._c.transaction() as con:
            save_confirmed(con, writes, self._types, run_id)

    def rebuild_record_fingerprints(self, object_type: str | None = None) -> None:
        """Recompute ``snapshot_record`` from ``snapshot`` (after writing snapshot rows by hand,
        e.g. in a benchmark; the store's own writes keep it in step)."""
        with self._c.transaction() as con:
            rebuild_record_fingerprints(con, object_type)

    # ------------------------------------------------------------------ full refresh

    def replace_from_hubspot(
        self,
        object_type: str,
        id_property: str,
        records: Iterable[Mapping[str, Any]],
        managed: list[str],
        types: Mapping[str, str],
        run_id: str | None = None,
        sample_limit: int = 20,
        *,
        partial: bool = False,
    ) -> DriftReport:
        """Replace the snapshot of ``object_type`` with what HubSpot holds.

        ``partial``: ``records`` are only some records (e.g. those a webhook named): only their
        rows are replaced, the others stay, and nothing is counted as missing.

        ``records`` are HubSpot objects ``{"id", "properties": {...}}`` (streamed; any size).
        Every managed property is stored canonically with origin ``hubspot`` (``NULL`` when
        HubSpot holds no value); each value keeps the ``as_of`` it had, so a refresh never
        weakens the as-of guard. Drift = values that differ from what the snapshot held.
        """
        props = list(dict.fromkeys([id_property, *managed]))
        report = DriftReport(object_type=object_type)
        seen: set[str] = set()
        with self._c.transaction() as con:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE incoming (external_id VARCHAR, hubspot_id VARCHAR, "
                "property VARCHAR, value VARCHAR)"
            )
            chunk: dict[str, list[str | None]] = {
                "external_id": [],
                "hubspot_id": [],
                "property": [],
                "value": [],
            }

            def flush() -> None:
                con.register("incoming_chunk", pa.table(chunk))
                con.execute("INSERT INTO incoming SELECT * FROM incoming_chunk")
                con.unregister("incoming_chunk")
                for v in chunk.values():
                    v.clear()

            for row in _snapshot_rows(records, id_property, props, types, report, seen):
                for col, value in zip(chunk.values(), row, strict=True):
                    col.append(value)
                if len(chunk["external_id"]) >= _REFRESH_CHUNK:
                    flush()
            flush()
            params = {"ot": object_type}
            _measure_drift(con, report, params, sample_limit)
            if not partial:
                (report.records_missing,) = con.execute(
                    "SELECT count(DISTINCT external_id) FROM snapshot WHERE object_type = $ot "
                    "AND external_id NOT IN (SELECT external_id FROM incoming)",
                    params,
                ).fetchall()[0]
            con.execute(
                "CREATE OR REPLACE TEMP TABLE refreshed AS SELECT i.external_id, i.hubspot_id, "
                "i.property, i.value, s.as_of FROM incoming i LEFT JOIN "
                "(SELECT * FROM snapshot WHERE object_type = $ot) s "
                "ON s.external_id = i.external_id AND s.property = i.property",
                params,
            )
            if partial:
                con.execute(
                    "DELETE FROM snapshot WHERE object_type = $ot AND external_id IN "
                    "(SELECT external_id FROM incoming)",
                    params,
                )
            else:
                con.execute("DELETE FROM snapshot WHERE object_type = $ot", params)
            con.execute(
                "INSERT INTO snapshot SELECT $ot, external_id, hubspot_id, property, value, as_of, "
                "'hubspot', $now, $run FROM refreshed ORDER BY external_id, property",
                {**params, "now": now(), "run": run_id},
            )
            if partial:
                con.execute(
                    "DELETE FROM snapshot_record WHERE object_type = $ot AND external_id IN "
                    "(SELECT external_id FROM incoming)",
                    params,
                )
                con.execute(
                    "INSERT INTO snapshot_record SELECT $ot, s.external_id, "
                    f"any_value(s.hubspot_id), {RECORD_FP_SQL} FROM snapshot s "
                    "WHERE s.object_type = $ot AND s.external_id IN "
                    "(SELECT external_id FROM incoming) GROUP BY s.external_id",
                    params,
                )
            else:
                rebuild_record_fingerprints(con, object_type)
            con.execute("DROP TABLE incoming")
            con.execute("DROP TABLE refreshed")
        return report

    def merge_from_hubspot(
        self,
        object_type: str,
        id_property: str,
        records: Iterable[Mapping[str, Any]],
        managed: list[str],
        types: Mapping[str, str],
        run_id: str | None = None,
        sample_limit: int = 20,
    ) -> DriftReport:
        """Incremental refresh: the records read (those HubSpot modified since the cursor)
        replace their rows; every other record stays as it is. Rows of the same HubSpot id
        under another external id (an email changed, a record re-keyed) are dropped. Drift =
        values that differ from what the snapshot held."""
        props = list(dict.fromkeys([id_property, *managed]))
        report = DriftReport(object_type=object_type)
        rows: dict[str, list[str | None]] = {
            "external_id": [],
            "hubspot_id": [],
            "property": [],
            "value": [],
        }
        seen: set[str] = set()
        for row in _snapshot_rows(records, id_property, props, types, report, seen):
            for col, value in zip(rows.values(), row, strict=True):
                col.append(value)
        if not seen:
            return report
        params = {"ot": object_type}
        with self._c.transaction() as con:
            con.register(
                "incoming", pa.table({k: pa.array(v, pa.string()) for k, v in rows.items()})
            )
            try:
                _measure_drift(con, report, params, sample_limit)
                con.execute(
                    "CREATE OR REPLACE TEMP TABLE refreshed AS SELECT i.external_id, "
                    "i.hubspot_id, i.property, i.value, s.as_of FROM incoming i LEFT JOIN "
                    "(SELECT * FROM snapshot WHERE object_type = $ot AND external_id IN "
                    " (SELECT external_id FROM incoming)) s "
                    "ON s.external_id = i.external_id AND s.property = i.property",
                    params,
                )
                con.execute(
                    "CREATE OR REPLACE TEMP TABLE touched AS SELECT DISTINCT external_id FROM "
                    "snapshot WHERE object_type = $ot AND (external_id IN (SELECT external_id "
                    "FROM incoming) OR hubspot_id IN (SELECT hubspot_id FROM incoming))",
                    params,
                )
                con.execute(
                    "DELETE FROM snapshot WHERE object_type = $ot AND external_id IN "
                    "(SELECT external_id FROM touched)",
                    params,
                )
                con.execute(
                    "INSERT INTO snapshot SELECT $ot, external_id, hubspot_id, property, value, "
                    "as_of, 'hubspot', $now, $run FROM refreshed ORDER BY external_id, property",
                    {**params, "now": now(), "run": run_id},
                )
                con.execute(
                    "DELETE FROM snapshot_record WHERE object_type = $ot AND external_id IN "
                    "(SELECT external_id FROM touched UNION SELECT external_id FROM incoming)",
                    params,
                )
                con.execute(
                    "INSERT INTO snapshot_record SELECT $ot, s.external_id, "
                    f"any_value(s.hubspot_id), {RECORD_FP_SQL} FROM snapshot s "
                    "WHERE s.object_type = $ot AND s.external_id IN (SELECT external_id FROM "
                    "incoming) GROUP BY s.external_id ORDER BY s.external_id",
                    params,
                )
                con.execute("DROP TABLE refreshed")
                con.execute("DROP TABLE touched")
            finally:
                con.unregister("incoming")
        return report

    # ------------------------------------------------------------------ reads

    def values(self, object_type: str) -> dict[str, dict[str, str | None]]:
        """``{external_id: {property: value}}`` of one object type (for tests and small tools)."""
        out: dict[str, dict[str, str | None]] = {}
        with self._c.connection() as con:
            for ext, prop, value in con.execute(
                "SELECT external_id, property, value FROM snapshot WHERE object_type = ? "
                "ORDER BY external_id, property",
                [object_type],
            ).fetchall():
                out.setdefault(ext, {})[prop] = value
        return out

    def hubspot_ids(self, object_type: str, external_ids: Iterable[str]) -> dict[str, str]:
        """``{external_id: hubspot_id}`` for the given records that the snapshot knows."""
        ids = list(dict.fromkeys(external_ids))
        if not ids:
            return {}
        with self._c.connection() as con:
            con.register("wanted_ids", pa.table({"external_id": pa.array(ids, pa.string())}))
            rows = con.execute(
                "SELECT s.external_id, any_value(s.hubspot_id) FROM snapshot s "
                "SEMI JOIN wanted_ids w ON w.external_id = s.external_id "
                "WHERE s.object_type = $ot AND s.hubspot_id IS NOT NULL GROUP BY s.external_id",
                {"ot": object_type},
            ).fetchall()
            con.unregister("wanted_ids")
        return dict(rows)

    def count(self, object_type: str | None = None) -> int:
        with self._c.connection() as con:
            row = con.execute(
                "SELECT count(*) FROM snapshot WHERE $ot IS NULL OR object_type = $ot",
                {"ot": object_type},
            ).fetchall()[0]
        return int(row[0])

    # ------------------------------------------------------------------ as-of verification

    def mark_verified(
        self, object_type: str, external_ids: pa.RecordBatchReader | pa.Table, as_of: dt.date
    ) -> int:
        """After a push: the records in ``external_ids`` (a column ``external_id``) are in step
        with the warehouse as of ``as_of``, except those with open dead letters. Keeps the
        newest date per record; returns how many records it moved forward."""
        with self._c.transaction() as con:
            con.register("verified_ids", external_ids)
            con.execute(
                "CREATE OR REPLACE TEMP TABLE v_new AS SELECT DISTINCT i.external_id "
                "FROM verified_ids i ANTI JOIN ("
                "  SELECT external_id FROM dead_letter WHERE object_type = $ot AND state = 'open'"
                ") d USING (external_id) "
                "ANTI JOIN ("
                "  SELECT external_id FROM record_verified "
                "  WHERE object_type = $ot AND verified_as_of >= $as_of"
                ") v USING (external_id)",
                {"ot": object_type, "as_of": as_of},
            )
            con.unregister("verified_ids")
            con.execute(
                "DELETE FROM record_verified WHERE object_type = $ot "
                "AND external_id IN (SELECT external_id FROM v_new)",
                {"ot": object_type},
            )
            con.execute(
                "INSERT INTO record_verified SELECT $ot, external_id, $as_of FROM v_new",
                {"ot": object_type, "as_of": as_of},
            )
            row = con.execute("SELECT count(*) FROM v_new").fetchone()
            con.execute("DROP TABLE v_new")
        return int(row[0]) if row else 0
