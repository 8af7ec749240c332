"""Sensor cursor for landed days: which days of each source have been requested already.

A high-water mark would skip a day whose files land late (after a newer day); the cursor
therefore keeps the set of days seen per source (a few KB a year). Cursors written by the old
high-water-mark format (``{source: "YYYY-MM-DD"}``) are read as "every day up to the mark".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

import dagster as dg

from pipelines.partitions import daily_partitions
from resources.warehouse import WarehouseResource
from spokesync.ingest.contract import PARTITIONED_SOURCES


def new_days(
    cursor: str | None,
    landed: dict[str, list[str]],
    done: Mapping[str, Iterable[str]] | None = None,
) -> tuple[dict[str, list[str]], str]:
    """(days not requested before, per source; the next cursor).

    ``done``: days per source already materialized (by a backfill, the demo, another job);
    they count as seen, so a sensor turned on after a backfill does not run them again."""
    raw: dict[str, object] = json.loads(cursor) if cursor else {}
    seen: dict[str, set[str]] = {}
    for source, days in landed.items():
        previous = raw.get(source)
        if isinstance(previous, str):  # old format: a high-water mark
            seen[source] = {d for d in days if d <= previous}
        else:
            seen[source] = set(previous or ())
    for source, days in (done or {}).items():
        if source in seen:
            seen[source] |= set(days) & set(landed[source])
    new = {s: sorted(set(days) - seen[s]) for s, days in landed.items()}
    state = {s: sorted(seen[s] | set(new[s])) for s in landed}
    return {s: d for s, d in new.items() if d}, json.dumps(state, sort_keys=True)


def new_landed_days(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> tuple[dict[str, list[str]], str]:
    """:func:`new_days` for a sensor: the landed days of every partitioned source that are
    partitions of the code location and neither seen by this sensor nor materialized (by a
    backfill, the demo, another job)."""
    valid_days = set(daily_partitions.get_partition_keys())
    return new_days(
        context.cursor,
        {
            s: [d for d in warehouse.landed_partitions(s) if d in valid_days]
            for s in PARTITIONED_SOURCES
        },
        done={
            s: context.instance.get_materialized_partitions(dg.AssetKey(s))
            for s in PARTITIONED_SOURCES
        },
    )
