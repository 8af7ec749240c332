"""The state store: one DuckDB file per environment (``Settings.state_db``).

It holds the snapshot of what HubSpot holds (per object type, external id and property, as a
canonical value with its ``as_of`` and origin), a per-record fingerprint of those values
(``snapshot_record``, written in the same transactions, read by the diff's pre-filter), the
sync log, dead letters, planned changes of shadow runs, and one row per sync run. It
implements :class:`spokesync.changes.PushSink`.

DuckDB allows one writing process per file, so the store never holds a connection across
steps: use it as a context manager around one step (``with StateStore(path) as store: …``), or
call a method outside a ``with`` block and it opens and closes the file for that call. The diff
(:mod:`spokesync.diff`) attaches the file read-only only while it computes a plan, then
detaches, so a plan and the store can be used one after the other in one process.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from spokesync.canonical import canonical, configure_connection
from spokesync.changes import BatchLog, ConfirmedWrite, DeadLetter, RecordChange
from spokesync.state.schema import DDL, RECORD_FP_SQL

if TYPE_CHECKING:
    from spokesync.mapping.spec import MappingSpec

_SNAPSHOT_SCHEMA = pa.schema(
    [
        ("external_id", pa.string()),
        ("hubspot_id", pa.string()),
        ("property", pa.string()),
        ("value", pa.string()),
        ("as_of", pa.date32()),
    ]
)
_REFRESH_CHUNK = 50_000


class StateStoreBusy(RuntimeError):
    """The state DB file is locked by another process."""


# An association by external ids: (from_type, from_external_id, to_type, to_external_id,
# association type id, category).
LinkRow = tuple[str, str, str, str, int, str]


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


def _md(value: object) -> str:
    if value is None:
        return "∅"
    s = str(value).replace("|", "\\|").replace("\n", " ")
    return (s[:60] + "…") if len(s) > 60 else s


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class StateStore:
    """The DuckDB state store; see the module docstring for the connection rules.

    ``mappings`` tell the store each object type's property types, so values HubSpot confirms
    are stored canonically and only managed properties are kept. Without them, confirmed
    values are stored trimmed, as given.
    """

    def __init__(self, path: Path | str, mappings: Iterable[MappingSpec] = ()) -> None:
        self.path = Path(path)
        self._types: dict[str, dict[str, str]] = {}
        for m in mappings:
            self.set_types(m.object_type, m.property_types)
        self._con: duckdb.DuckDBPyConnection | None = None

    def set_types(self, object_type: str, types: Mapping[str, str]) -> None:
        """Register the canonical form of each managed property of ``object_type``."""
        self._types[object_type] = dict(types)

    # ------------------------------------------------------------------ connection handling

    def __enter__(self) -> StateStore:
        if self._con is not None:
            raise RuntimeError(f"state store {self.path} is already open")
        self._con = self._open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def _open(self) -> duckdb.DuckDBPyConnection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(str(self.path))
        except duckdb.IOException as e:
            raise StateStoreBusy(
                f"state store {self.path} cannot be opened (another process is probably "
                f"writing to it; DuckDB allows one writer per file): {e}"
            ) from e
        configure_connection(con)
        had_fingerprints = bool(
            con.execute(
                "SELECT 1 FROM information_schema.tables WHERE table_name = 'snapshot_record'"
            ).fetchall()
        )
        for stmt in DDL:
            con.execute(stmt)
        if not had_fingerprints:  # a store from before fingerprints: build them once
            self._rebuild_record_fingerprints(con, None)
        return con

    @staticmethod
    def _rebuild_record_fingerprints(
        con: duckdb.DuckDBPyConnection, object_type: str | None
    ) -> None:
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

    def rebuild_record_fingerprints(self, object_type: str | None = None) -> None:
        """Recompute ``snapshot_record`` from ``snapshot`` (after writing snapshot rows by hand,
        e.g. in a benchmark; the store's own writes keep it in step)."""
        with self._transaction() as con:
            self._rebuild_record_fingerprints(con, object_type)

    @contextmanager
    def _connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self._con is not None:
            yield self._con
            return
        con = self._open()
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._connection() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def ensure_schema(self) -> None:
        """Create the file and its tables if missing."""
        with self._connection():
            pass

    # ------------------------------------------------------------------ PushSink

    def _canonical_value(self, object_type: str, prop: str, value: object) -> str | None:
        form = self._types.get(object_type, {}).get(prop, "string")
        return canonical(form, value)

    def record_confirmed(self, writes: list[ConfirmedWrite], run_id: str) -> None:
        """Write-through: the snapshot takes exactly what HubSpot confirmed (origin ``pushed``,
        the write's ``as_of``); open dead letters of those records are resolved."""
        if not writes:
            return
        by_type: dict[str, list[ConfirmedWrite]] = {}
        for w in writes:
            by_type.setdefault(w.object_type, []).append(w)
        with self._transaction() as con:
            for object_type, ws in by_type.items():
                managed = self._types.get(object_type)
                rows: dict[str, list[Any]] = {k: [] for k in _SNAPSHOT_SCHEMA.names}
                records: dict[tuple[str, str], str] = {}
                for w in ws:
                    records[(w.object_type, w.external_id)] = w.hubspot_id
                    for prop, value in w.properties.items():
                        if managed is not None and prop not in managed:
                            continue
                        rows["external_id"].append(w.external_id)
                        rows["hubspot_id"].append(w.hubspot_id)
                        rows["property"].append(prop)
                        rows["value"].append(self._canonical_value(object_type, prop, value))
                        rows["as_of"].append(w.as_of)
                con.register("confirmed", pa.table(rows, schema=_SNAPSHOT_SCHEMA))
                con.register(
                    "ids",
                    pa.table(
                        {
                            "external_id": [k[1] for k in records],
                            "hubspot_id": list(records.values()),
                        }
                    ),
                )
                # Explicit id-range predicates let DuckDB skip row groups by their zone maps
                # (the diff emits changes in external-id order, so batches cover narrow ranges)
                # instead of probing the whole snapshot for every batch.
                rng = {
                    "ot": object_type,
                    "lo": min(k[1] for k in records),
                    "hi": max(k[1] for k in records),
                }
                in_range = (
                    "snapshot.object_type = $ot AND snapshot.external_id >= $lo "
                    "AND snapshot.external_id <= $hi"
                )
                con.execute(
                    f"DELETE FROM snapshot USING confirmed c WHERE {in_range} "
                    "AND snapshot.external_id = c.external_id AND snapshot.property = c.property",
                    rng,
                )
                con.execute(
                    "INSERT INTO snapshot SELECT $ot, external_id, hubspot_id, property, value, "
                    "as_of, 'pushed', $now, $run FROM confirmed ORDER BY external_id, property",
                    {"ot": object_type, "now": _now(), "run": run_id},
                )
                # A record's HubSpot id can change (re-created, merged): keep its rows in step.
                con.execute(
                    f"UPDATE snapshot SET hubspot_id = i.hubspot_id FROM ids i WHERE {in_range} "
                    "AND snapshot.external_id = i.external_id "
                    "AND snapshot.hubspot_id IS DISTINCT FROM i.hubspot_id",
                    rng,
                )
                # Recompute the touched records' fingerprints from their (range-pruned) rows.
                con.execute(
                    "DELETE FROM snapshot_record USING ids i WHERE snapshot_record.object_type "
                    "= $ot AND snapshot_record.external_id >= $lo AND snapshot_record.external_id "
                    "<= $hi AND snapshot_record.external_id = i.external_id",
                    rng,
                )
                con.execute(
                    "INSERT INTO snapshot_record SELECT $ot, s.external_id, "
                    f"any_value(s.hubspot_id), {RECORD_FP_SQL} FROM snapshot s "
                    "SEMI JOIN ids i ON i.external_id = s.external_id "
                    "WHERE s.object_type = $ot AND s.external_id >= $lo AND s.external_id <= $hi "
                    "GROUP BY s.external_id ORDER BY s.external_id",
                    rng,
                )
                con.execute(
                    "UPDATE dead_letter SET state = 'resolved', last_seen = $now FROM ids i "
                    "WHERE dead_letter.object_type = $ot AND dead_letter.external_id = i.external_id "
                    "AND dead_letter.state IN ('open', 'replayed')",
                    {"ot": object_type, "now": _now()},
                )
                con.unregister("confirmed")
                con.unregister("ids")

    def record_dead_letters(self, letters: list[DeadLetter], run_id: str) -> None:
        """Insert each rejected record, or bump ``attempts``/``last_seen`` of its open letter."""
        if not letters:
            return
        now = _now()
        with self._transaction() as con:
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
                        "now": now,
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
                        now,
                        now,
                        run_id,
                        d.as_of,
                    ],
                )

    def record_batch(self, entry: BatchLog) -> None:
        """Append one HTTP call of the push to the sync log."""
        with self._connection() as con:
            con.execute(
                "INSERT INTO sync_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    entry.run_id,
                    entry.batch_seq,
                    entry.request_id,
                    entry.object_type,
                    entry.endpoint,
                    entry.status_code,
                    entry.correlation_id,
                    entry.latency_ms,
                    entry.records_sent,
                    entry.records_ok,
                    entry.records_failed,
                    entry.attempt,
                    entry.error,
                    entry.sent_at,
                ],
            )

    # ------------------------------------------------------------------ full refresh

    def replace_snapshot_from_hubspot(
        self,
        object_type: str,
        id_property: str,
        records: Iterable[Mapping[str, Any]],
        managed: list[str],
        types: Mapping[str, str],
        run_id: str | None = None,
        sample_limit: int = 20,
    ) -> DriftReport:
        """Replace the snapshot of ``object_type`` with what HubSpot holds.

        ``records`` are HubSpot objects ``{"id", "properties": {...}}`` (streamed; any size).
        Every managed property is stored canonically with origin ``hubspot`` (``NULL`` when
        HubSpot holds no value); each value keeps the ``as_of`` it had, so a refresh never
        weakens the as-of guard. Drift = values that differ from what the snapshot held.
        """
        id_form = types.get(id_property, "email" if id_property == "email" else "string")
        props = list(dict.fromkeys([id_property, *managed]))
        report = DriftReport(object_type=object_type)
        seen: set[str] = set()
        with self._transaction() as con:
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
                    chunk["external_id"].append(ext)
                    chunk["hubspot_id"].append(hid)
                    chunk["property"].append(prop)
                    chunk["value"].append(canonical(types.get(prop, "string"), values.get(prop)))
                if len(chunk["external_id"]) >= _REFRESH_CHUNK:
                    flush()
            flush()
            params = {"ot": object_type}
            report.values_drifted, report.records_drifted = con.execute(
                "SELECT count(*), count(DISTINCT s.external_id) FROM snapshot s JOIN incoming i "
                "ON s.external_id = i.external_id AND s.property = i.property "
                "WHERE s.object_type = $ot AND s.value IS DISTINCT FROM i.value",
                params,
            ).fetchall()[0]
            report.samples = [
                DriftedValue(*row)
                for row in con.execute(
                    "SELECT s.external_id, s.property, s.value, i.value FROM snapshot s "
                    "JOIN incoming i ON s.external_id = i.external_id AND s.property = i.property "
                    "WHERE s.object_type = $ot AND s.value IS DISTINCT FROM i.value "
                    "ORDER BY s.external_id, s.property LIMIT $lim",
                    {**params, "lim": sample_limit},
                ).fetchall()
            ]
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
            con.execute("DELETE FROM snapshot WHERE object_type = $ot", params)
            con.execute(
                "INSERT INTO snapshot SELECT $ot, external_id, hubspot_id, property, value, as_of, "
                "'hubspot', $now, $run FROM refreshed ORDER BY external_id, property",
                {**params, "now": _now(), "run": run_id},
            )
            self._rebuild_record_fingerprints(con, object_type)
            con.execute("DROP TABLE incoming")
            con.execute("DROP TABLE refreshed")
        return report

    # ------------------------------------------------------------------ reading the snapshot

    def snapshot_values(self, object_type: str) -> dict[str, dict[str, str | None]]:
        """``{external_id: {property: value}}`` of one object type (for tests and small tools)."""
        out: dict[str, dict[str, str | None]] = {}
        with self._connection() as con:
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
        with self._connection() as con:
            con.register("wanted_ids", pa.table({"external_id": pa.array(ids, pa.string())}))
            rows = con.execute(
                "SELECT s.external_id, any_value(s.hubspot_id) FROM snapshot s "
                "SEMI JOIN wanted_ids w ON w.external_id = s.external_id "
                "WHERE s.object_type = $ot AND s.hubspot_id IS NOT NULL GROUP BY s.external_id",
                {"ot": object_type},
            ).fetchall()
            con.unregister("wanted_ids")
        return dict(rows)

    # ------------------------------------------------------------------ as-of verification

    def mark_verified(
        self, object_type: str, external_ids: pa.RecordBatchReader | pa.Table, as_of: dt.date
    ) -> int:
        """After a push: the records in ``external_ids`` (a column ``external_id``) are in step
        with the warehouse as of ``as_of``, except those with open dead letters. Keeps the
        newest date per record; returns how many records it moved forward."""
        with self._transaction() as con:
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

    # ------------------------------------------------------------------ associations

    ASSOCIATION_COLUMNS = (
        "from_type", "from_external_id", "to_type", "to_external_id", "type_id", "category",
    )  # fmt: skip

    def _association_table(self, links: Iterable[LinkRow]) -> pa.Table:
        cols = list(zip(*links, strict=True)) or [[] for _ in self.ASSOCIATION_COLUMNS]
        return pa.table(
            {
                name: pa.array(values, pa.int32() if name == "type_id" else pa.string())
                for name, values in zip(self.ASSOCIATION_COLUMNS, cols, strict=True)
            }
        )

    def _select_links(self, links: Iterable[LinkRow], sql: str) -> list[LinkRow]:
        """Run ``sql`` (a SELECT of link rows) with ``links`` registered as ``wanted_links``."""
        table = self._association_table(links)
        if table.num_rows == 0:
            return []
        with self._connection() as con:
            con.register("wanted_links", table)
            rows = con.execute(sql).fetchall()
            con.unregister("wanted_links")
        return [tuple(r) for r in rows]  # type: ignore[misc]

    def missing_associations(self, links: Iterable[LinkRow]) -> list[LinkRow]:
        """The links (from_type, from_external_id, to_type, to_external_id, type_id, category)
        HubSpot has not confirmed yet (in no particular order)."""
        return self._select_links(
            links,
            "SELECT w.* FROM wanted_links w ANTI JOIN association_snapshot a USING "
            "(from_type, from_external_id, to_type, to_external_id, type_id, category)",
        )

    def stale_associations(self, links: Iterable[LinkRow]) -> list[LinkRow]:
        """Confirmed links of the given records that the records no longer want: same record,
        target object and type, another target (a contact that moved to another company)."""
        return self._select_links(
            links,
            "SELECT a.from_type, a.from_external_id, a.to_type, a.to_external_id, "
            "a.type_id, a.category FROM association_snapshot a "
            "SEMI JOIN (SELECT DISTINCT from_type, from_external_id, to_type, type_id "
            "           FROM wanted_links) w "
            "  USING (from_type, from_external_id, to_type, type_id) "
            "ANTI JOIN wanted_links x "
            "  USING (from_type, from_external_id, to_type, to_external_id, type_id, category)",
        )

    def drop_associations(self, links: Iterable[LinkRow]) -> None:
        """Forget links HubSpot confirmed removing."""
        table = self._association_table(links)
        if table.num_rows == 0:
            return
        with self._transaction() as con:
            con.register("gone_links", table)
            con.execute(
                "DELETE FROM association_snapshot a USING gone_links g "
                "WHERE a.from_type = g.from_type AND a.from_external_id = g.from_external_id "
                "AND a.to_type = g.to_type AND a.to_external_id = g.to_external_id "
                "AND a.type_id = g.type_id AND a.category = g.category"
            )
            con.unregister("gone_links")

    def forget_associations(self, object_type: str) -> int:
        """Forget confirmed links from or to ``object_type`` (after a full refresh, whose
        records may have been deleted or re-created in HubSpot): the next sync re-sends them,
        which HubSpot treats as a no-op where they still exist."""
        with self._connection() as con:
            row = con.execute(
                "DELETE FROM association_snapshot WHERE from_type = $ot OR to_type = $ot "
                "RETURNING 1",
                {"ot": object_type},
            ).fetchall()
        return len(row)

    def record_associations(self, links: Iterable[LinkRow], run_id: str) -> None:
        """Remember links HubSpot confirmed (idempotent)."""
        table = self._association_table(links)
        if table.num_rows == 0:
            return
        with self._transaction() as con:
            con.register("new_links", table)
            con.execute(
                "INSERT INTO association_snapshot SELECT n.*, $run, $now FROM new_links n "
                "ANTI JOIN association_snapshot a USING "
                "(from_type, from_external_id, to_type, to_external_id, type_id, category)",
                {"run": run_id, "now": _now()},
            )
            con.unregister("new_links")

    def snapshot_count(self, object_type: str | None = None) -> int:
        with self._connection() as con:
            row = con.execute(
                "SELECT count(*) FROM snapshot WHERE $ot IS NULL OR object_type = $ot",
                {"ot": object_type},
            ).fetchall()[0]
        return int(row[0])

    # ------------------------------------------------------------------ dead letters

    def open_dead_letters(
        self, object_type: str | None = None, states: tuple[str, ...] = ("open",)
    ) -> list[DeadLetterRecord]:
        """Dead letters in ``states`` (default: open), oldest first."""
        with self._connection() as con:
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

    def mark_replayed(self, letter_ids: Iterable[int]) -> int:
        """Mark open letters as replayed (re-sent); returns how many changed state."""
        ids = list(letter_ids)
        if not ids:
            return 0
        with self._connection() as con:
            rows = con.execute(
                "UPDATE dead_letter SET state = 'replayed', last_seen = $now "
                "WHERE state = 'open' AND list_contains($ids, letter_id) RETURNING letter_id",
                {"now": _now(), "ids": ids},
            ).fetchall()
        return len(rows)

    def dead_letter_changes(
        self, object_type: str, letter_ids: Iterable[int] | None = None
    ) -> list[RecordChange]:
        """The open dead letters of ``object_type`` as :class:`RecordChange` s to re-send.

        Uses each letter's payload properties; the HubSpot id comes from the snapshot.
        """
        wanted = None if letter_ids is None else set(letter_ids)
        letters = [
            d
            for d in self.open_dead_letters(object_type)
            if wanted is None or d.letter_id in wanted
        ]
        if not letters:
            return []
        with self._connection() as con:
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

    # ------------------------------------------------------------------ runs and plans

    def start_run(
        self,
        run_id: str,
        object_type: str,
        mapping_version: str | None,
        shadow: bool,
        as_of: dt.date | None = None,
    ) -> None:
        with self._transaction() as con:
            # One row per (run, object): a step that re-plans in the same run replaces it.
            con.execute(
                "DELETE FROM sync_runs WHERE run_id = ? AND object_type = ?", [run_id, object_type]
            )
            con.execute(
                "INSERT INTO sync_runs VALUES (?, ?, ?, ?, ?, ?, NULL, 'running', NULL)",
                [run_id, object_type, mapping_version, shadow, as_of, _now()],
            )

    def finish_run(
        self, run_id: str, object_type: str, status: str, counts: Mapping[str, Any]
    ) -> None:
        with self._connection() as con:
            con.execute(
                "UPDATE sync_runs SET finished_at = ?, status = ?, counts = ? "
                "WHERE run_id = ? AND object_type = ?",
                [_now(), status, json.dumps(dict(counts), default=str), run_id, object_type],
            )

    def record_planned_changes(
        self, run_id: str, object_type: str, rows: pa.RecordBatchReader | pa.Table
    ) -> int:
        """Store one object's planned changes for a run (see ``ChangePlan.planned_rows``);
        returns how many rows it holds. Re-planning the object in the same run (the changes
        asset, then a shadow push) replaces its plan instead of recording it twice."""
        with self._transaction() as con:
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
        with self._connection() as con:
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
