"""A portal and a state store as a first sync and a later refresh leave them, in minutes.

A real first sync at 1M companies + 5M contacts is ~45 minutes of rate limit at 250/10 s; the
day after it needs only what that sync leaves behind. :func:`seed_portal_and_store` builds it:

- each mapping's desired state (the shipped SQL, in the bench process) is written to Parquet in
  the form the push sends it (canonical strings, the id property first) and bulk-loaded into the
  sandbox (``POST /__sandbox/bulk-load``: validated and normalised like ``batch/create``, with
  history), each contact linked to its company by the mapping's association (unlabeled default
  type, as the push's default association makes it);
- the state store gets what the first sync's write-through would have written: the snapshot
  (canonical desired values) under the HubSpot ids the sandbox gave (consecutive in file order:
  ``firstId`` + row number), the record fingerprints, ``record_verified`` at the day, the
  association snapshot (the links whose company exists, with the resolved type id) and a
  refresh cursor per object;
- the sandbox's write times end ``LAG`` before the cursor (``endsAt``), beyond the refresh's
  5-minute overlap, and ``known_modified`` is empty: the state after a refresh that already
  read past the first sync's writes. The day's incremental refresh then finds nothing to read
  or count in the window; a day right after the first sync (the cursor before the writes, every
  write a known time to count) is ``bench_scale``'s ``--resume`` after ``--first-only``.

Not seeded: ``value_history``, ``canonical_events``, ``sync_log`` and ``sync_runs`` of the
first sync (audit trail the day appends to; its plan reads none of them).

:func:`check_seed` reads the sandbox's SQLite file back and compares every managed value
(canonicalised in DuckDB by the refresh's rules), id and link with the store.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from spokesync import warehouse
from spokesync.canonical import configure_connection, sql_canonical
from spokesync.mapping import load_mapping
from spokesync.mapping.spec import MappingSpec, quote_identifier
from spokesync.sandbox.launcher import SandboxProcess

LAG_MS = 10 * 60 * 1000  # the portal's writes end this long before the cursor (overlap: 5 min)
SANDBOX_TYPE_IDS = {"contacts": "0-1", "companies": "0-2"}


def _resolved(paths: list[Path], base_url: str, token: str, home: Path) -> list[MappingSpec]:
    """The mappings with association type ids from the sandbox; reference tables refreshed
    (owners as the sync will read them)."""
    from spokesync.hubspot.association_types import resolve_association_types
    from spokesync.hubspot.client import HubSpotClient
    from spokesync.hubspot.reference import refresh_reference

    async def go() -> list[MappingSpec]:
        async with HubSpotClient(base_url, token) as client:
            await refresh_reference(client, home / "warehouse", "bench-seed")
            return [
                await resolve_association_types(client, load_mapping(p), "bench-seed")
                for p in paths
            ]

    return asyncio.run(go())


def seed_portal_and_store(
    home: Path, state_db: Path, sandbox: SandboxProcess, paths: list[Path]
) -> dict[str, dict[str, Any]]:
    """See the module docstring. ``paths``: mapping files, targets of associations first.
    Returns per object: records, links, seconds per step, the load's answer."""
    from spokesync.desired import DESIRED_TABLE, ID_COLUMN, build_desired
    from spokesync.state.store import StateStore

    mappings = _resolved(paths, sandbox.base_url, sandbox.token, home)
    by_type = {m.object_type: m for m in mappings}
    as_of = warehouse.newest_partition(home / "warehouse")
    assert as_of is not None
    state_db.parent.mkdir(parents=True, exist_ok=True)
    with StateStore(state_db) as store:
        store.ensure_schema()
    ends_at = int(time.time() * 1000) - LAG_MS
    out: dict[str, dict[str, Any]] = {}
    bulk_dir = home / "bulk"
    bulk_dir.mkdir(exist_ok=True)
    for mapping in mappings:
        ot = mapping.object_type
        figures: dict[str, Any] = {}
        con = warehouse.connect(home / "warehouse")
        try:
            # set-up, not measured: room for millions of rows
            con.execute("SET memory_limit = '6GB'")
            con.execute("SET preserve_insertion_order = false")
            t0 = time.perf_counter()
            build_desired(con, mapping, as_of)
            figures["desired_s"] = time.perf_counter() - t0
            props = mapping.managed_properties
            if len(mapping.associations) > 1:
                raise ValueError(f"{ot}: the bulk load links by one association only")
            cols = [f"CAST({ID_COLUMN} AS VARCHAR) AS {quote_identifier(props[0])}"]
            cols += [f"CAST({quote_identifier(p)} AS VARCHAR) AS {quote_identifier(p)}"
                     for p in props[1:]]  # fmt: skip
            cols += [f"CAST({quote_identifier(f'__assoc_{i}')} AS VARCHAR) AS __link_{i}"
                     for i, _ in enumerate(mapping.associations)]  # fmt: skip
            path = bulk_dir / f"{ot}.parquet"
            t0 = time.perf_counter()
            con.execute(
                f"COPY (SELECT {', '.join(cols)} FROM {DESIRED_TABLE} ORDER BY {ID_COLUMN}) "
                f"TO {warehouse.sql_literal(str(path))} (FORMAT parquet, ROW_GROUP_SIZE 100000)"
            )
            figures["parquet_s"] = time.perf_counter() - t0
            records = int(con.execute(f"SELECT count(*) FROM {DESIRED_TABLE}").fetchall()[0][0])
        finally:
            con.close()

        associate = None
        if mapping.associations:
            spec = mapping.associations[0]
            associate = {
                "toObjectType": spec.to_object_type,
                "column": "__link_0",
                "toProperty": by_type[spec.to_object_type].id.property,
                "labels": [spec.label] if spec.label else [],
            }
        answer = sandbox.bulk_load(ot, path, associate=associate, ends_at=ends_at)
        first, last = int(answer["firstId"]), int(answer["lastId"])
        if answer["loaded"] != records or last - first + 1 != records:
            raise RuntimeError(f"{ot}: loaded {answer}, expected {records:,} consecutive ids")
        figures |= {"records": records, "load": answer}

        # the state store as the first sync's write-through leaves it
        t0 = time.perf_counter()
        con = duckdb.connect()
        try:
            con.execute("SET memory_limit = '6GB'")
            con.execute("SET preserve_insertion_order = false")
            con.execute(f"ATTACH {warehouse.sql_literal(str(state_db))} AS st")
            src = (
                f"(SELECT *, CAST({first} + file_row_number AS VARCHAR) AS __hid FROM "
                f"read_parquet({warehouse.sql_literal(str(path))}, file_row_number = true))"
            )
            key = quote_identifier(props[0])
            long = " UNION ALL ".join(
                f"SELECT {key} AS ext, __hid, '{p}' AS property, {quote_identifier(p)} AS value "
                f"FROM {src}"
                for p in props
            )
            con.execute(
                "INSERT INTO st.snapshot SELECT ?, ext, __hid, property, value, ?, 'pushed', "
                f"now(), 'bench-seed' FROM ({long}) WHERE value IS NOT NULL",
                [ot, as_of],
            )
            con.execute(
                f"INSERT INTO st.record_verified SELECT ?, {key}, ? FROM {src}", [ot, as_of]
            )
            links = 0
            if mapping.associations:
                spec = mapping.associations[0]
                links = int(
                    con.execute(
                        "INSERT INTO st.association_snapshot SELECT ?, s.ext, ?, s.__link_0, ?, ?, "
                        "'bench-seed', now() FROM (SELECT "
                        f"{key} AS ext, __link_0 FROM {src}) s WHERE s.__link_0 IN (SELECT "
                        "external_id FROM st.snapshot_record WHERE object_type = ?)",
                        [ot, spec.to_object_type, spec.association_type_id, spec.category,
                         spec.to_object_type],
                    ).fetchall()[0][0]
                )  # fmt: skip
                if links != answer["associated"]:
                    raise RuntimeError(f"{ot}: {links:,} links in the store, sandbox {answer}")
            figures["links"] = links
            con.execute("DETACH st")
        finally:
            con.close()
        with StateStore(state_db) as store:
            store.rebuild_record_fingerprints(ot)
        figures["store_s"] = time.perf_counter() - t0
        out[ot] = figures
    # a refresh read past the load: the cursor is now, the writes LAG before it
    cursor_ms = int(time.time() * 1000)
    with StateStore(state_db) as store:
        for mapping in mappings:
            store.cursors.advance(mapping.object_type, cursor_ms, full=True)
    return out


def _sandbox_rows(db: Path, type_id: str) -> pa.Table:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        ids, props, updated = [], [], []
        for rid, text, at in con.execute(
            "SELECT id, properties, updated_at FROM records WHERE type_id = ? AND archived = 0",
            (type_id,),
        ):
            ids.append(str(rid))
            props.append(text)
            updated.append(at)
    finally:
        con.close()
    return pa.table({"hid": ids, "props": props, "updated": updated})


def _sandbox_links(db: Path, from_type: str, to_type: str, type_id: int) -> pa.Table:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT from_id, to_id FROM associations WHERE from_type = ? AND to_type = ? "
            "AND type_id = ?",
            (from_type, to_type, type_id),
        ).fetchall()
    finally:
        con.close()
    return pa.table({"f": [str(r[0]) for r in rows], "t": [str(r[1]) for r in rows]})


def check_seed(sandbox_db: Path, state_db: Path, paths: list[Path]) -> dict[str, dict[str, int]]:
    """Per object: records and values in the sandbox and the store, and how many differ
    (values canonicalised as a refresh does; ids by HubSpot id; links by both ends), plus
    the newest write time against the cursor. Every ``*_differ`` should be 0."""
    out: dict[str, dict[str, int]] = {}
    con = duckdb.connect()
    configure_connection(con)
    con.execute(f"ATTACH {warehouse.sql_literal(str(state_db))} AS st (READ_ONLY)")
    try:
        for path in paths:
            mapping = load_mapping(path)
            ot = mapping.object_type
            rows = _sandbox_rows(sandbox_db, SANDBOX_TYPE_IDS[ot])
            con.register("hs", rows)
            types = mapping.property_types
            long = " UNION ALL ".join(
                f"SELECT hid, '{p}' AS property, "
                f"{sql_canonical(types[p], f'json_extract_string(props, {_path(p)})')} AS value "
                "FROM hs"
                for p in mapping.managed_properties
            )
            (differ,) = con.execute(
                f"SELECT count(*) FROM (SELECT * FROM ({long}) WHERE value IS NOT NULL) h "
                "FULL OUTER JOIN (SELECT hubspot_id, property, value FROM st.snapshot "
                "WHERE object_type = ?) s ON h.hid = s.hubspot_id AND h.property = s.property "
                "WHERE h.value IS DISTINCT FROM s.value",
                [ot],
            ).fetchall()[0]
            (snap_records,) = con.execute(
                "SELECT count(*) FROM st.snapshot_record WHERE object_type = ?", [ot]
            ).fetchall()[0]
            (values,) = con.execute(
                "SELECT count(*) FROM st.snapshot WHERE object_type = ?", [ot]
            ).fetchall()[0]
            (newest,) = con.execute(
                "SELECT max(epoch_ms(CAST(updated AS TIMESTAMPTZ))) FROM hs"
            ).fetchall()[0]
            (cursor_ms,) = con.execute(
                "SELECT cursor_ms FROM st.refresh_cursor WHERE object_type = ?", [ot]
            ).fetchall()[0]
            figures = {
                "sandbox_records": rows.num_rows,
                "store_records": int(snap_records),
                "store_values": int(values),
                "values_differ": int(differ),
                "newest_write_before_cursor_ms": int(cursor_ms) - int(newest or 0),
            }
            con.unregister("hs")
            for spec in mapping.associations:
                (type_id,) = con.execute(
                    "SELECT any_value(type_id) FROM st.association_snapshot WHERE from_type = ? "
                    "AND to_type = ?",
                    [ot, spec.to_object_type],
                ).fetchall()[0]
                links = _sandbox_links(
                    sandbox_db,
                    SANDBOX_TYPE_IDS[ot],
                    SANDBOX_TYPE_IDS[spec.to_object_type],
                    int(type_id or 0),
                )
                con.register("hl", links)
                (link_differ,) = con.execute(
                    "SELECT count(*) FROM hl FULL OUTER JOIN (SELECT f.hubspot_id AS f, "
                    "t.hubspot_id AS t FROM st.association_snapshot a JOIN st.snapshot_record f "
                    "ON f.object_type = a.from_type AND f.external_id = a.from_external_id "
                    "JOIN st.snapshot_record t ON t.object_type = a.to_type AND "
                    "t.external_id = a.to_external_id WHERE a.from_type = ? AND a.to_type = ?) "
                    "s ON hl.f = s.f AND hl.t = s.t WHERE hl.f IS NULL OR s.f IS NULL",
                    [ot, spec.to_object_type],
                ).fetchall()[0]
                figures |= {"sandbox_links": links.num_rows, "links_differ": int(link_differ)}
                con.unregister("hl")
            out[ot] = figures
    finally:
        con.close()
    return out


def _path(prop: str) -> str:
    return warehouse.sql_literal(f'$."{prop}"')


__all__ = ["LAG_MS", "check_seed", "seed_portal_and_store"]
