"""The canonical events a change plan's writes are (see :mod:`spokesync.events`).

For each of the mapping's ``events:``, the records in the plan that match its ``when`` and
have at least one of its properties changed. The runner records them after the push, only for
records HubSpot confirmed (:meth:`spokesync.state.events.EventStore.record`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import duckdb

from spokesync.desired import DESIRED_TABLE, EVENT_PREFIX, ID_COLUMN
from spokesync.events import CanonicalEvent, SourceRow, event_id
from spokesync.mapping.spec import MappingSpec, quote_identifier


def plan_events(
    con: duckdb.DuckDBPyConnection,
    mapping: MappingSpec,
    as_of: dt.date,
    run_id: str,
    plan_table: str = "plan",
) -> Iterator[CanonicalEvent]:
    """The plan's events, one at a time (streamed from DuckDB: a first sync has one or more
    per record, so they are never all built at once). ``con``: a connection of the plan's own
    (``ChangePlan.cursor()``), read by one query at a time."""
    for i, spec in enumerate(mapping.events):
        p = f"{EVENT_PREFIX}{i}"
        srcs = [quote_identifier(f"{p}_src{j}") for j in range(len(spec.source_rows))]
        reader = con.sql(
            f"SELECT {ID_COLUMN}, {quote_identifier(p + '_occ')}, "
            f"{quote_identifier(p + '_at')}"
            + "".join(f", {s}" for s in srcs)
            + f" FROM {DESIRED_TABLE} WHERE {quote_identifier(p)} AND {ID_COLUMN} IN ("
            f"SELECT {ID_COLUMN} FROM {plan_table} WHERE list_contains($props, property)) "
            f"ORDER BY {ID_COLUMN}",
            params={"props": list(spec.properties)},
        ).to_arrow_reader(8192)
        for batch in reader:
            columns = [batch.column(c).to_pylist() for c in range(batch.num_columns)]
            for ext, occ, at, *keys in zip(*columns, strict=True):
                yield CanonicalEvent(
                    event_id=event_id(spec.type, mapping.object_type, ext, occ),
                    type=spec.type,
                    object_type=mapping.object_type,
                    external_ids={mapping.object_type: ext},
                    occurred_at=at,
                    as_of=as_of,
                    source_rows=[
                        SourceRow(table=r.table, key=str(k))
                        for r, k in zip(spec.source_rows, keys, strict=True)
                        if k is not None
                    ],
                    properties=list(spec.properties),
                    run_id=run_id,
                    data={"occurrence": occ},
                )
