"""Task intents: the rows of a task trigger's SQL for one ``as_of``, as tasks to create.

Runs the trigger's query in DuckDB over the warehouse views (and HubSpot's reference tables),
evaluates its subject/body/due expressions, and gives each row its deterministic event id.
Nothing here talks to HubSpot; :mod:`spokesync.hubspot.tasks` creates the tasks exactly once.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spokesync import warehouse
from spokesync.canonical import canonical, configure_connection
from spokesync.desired import DesiredStateError
from spokesync.mapping.spec import quote_identifier
from spokesync.mapping.task_spec import TaskTriggerSpec
from spokesync.quality import register_macros


@dataclass(frozen=True, slots=True)
class TaskIntent:
    """One task to exist in HubSpot, by the event that caused it."""

    event_id: str
    trigger: str
    about_type: str
    about_external_id: str
    properties: dict[str, str]  # hs_task_subject, hs_task_body (with marker), hs_timestamp, …
    source_row: dict[str, Any] = field(default_factory=dict)  # key columns and values

    @property
    def marker(self) -> str:
        return self.event_id


def _params(
    spec: TaskTriggerSpec, as_of: dt.date, sql: str, since: dt.date | None = None
) -> dict[str, object]:
    values: dict[str, object] = {"as_of": as_of, "since": since or as_of, **spec.parameters}
    return {k: v for k, v in values.items() if re.search(rf"\${k}\b", sql)}


def marker_line(event_id: str) -> str:
    """The line every task body ends with: its event id, one search token."""
    return f"spokesync event {event_id}"


def plan_task_intents(
    warehouse_dir: Path, spec: TaskTriggerSpec, as_of: dt.date, since: dt.date | None = None
) -> list[TaskIntent]:
    """The trigger's events for ``as_of`` (one intent per distinct event id, id order).

    ``since``: the first day of a backfill's range (bound as ``$since``; ``as_of`` for one
    day), so a range run finds the events of every day in it, as daily runs would have."""
    con = warehouse.connect(Path(warehouse_dir))
    try:
        configure_connection(con)
        register_macros(con)
        cols = [quote_identifier(c) for c in spec.key]
        sql = (
            f"SELECT {', '.join(cols)}, CAST({quote_identifier(spec.about_column)} AS VARCHAR), "
            f"CAST(({spec.subject}) AS VARCHAR), CAST(({spec.body}) AS VARCHAR), ({spec.due}), "
            + (
                f"CAST({quote_identifier(spec.owner_column)} AS VARCHAR)"
                if spec.owner_column
                else "NULL"
            )
            + f" FROM ({spec.source.sql}) AS src"
        )
        try:
            rows = con.execute(sql, _params(spec, as_of, sql, since)).fetchall()
        except Exception as e:  # duckdb.Error: name the file
            raise DesiredStateError(f"{spec.path}: {e}") from e
    finally:
        con.close()
    out: dict[str, TaskIntent] = {}
    n = len(spec.key)
    for row in rows:
        keys, (about, subject, body, due, owner) = row[:n], row[n:]
        if about is None:
            continue
        event_id = spec.event_id(keys)
        props = {
            "hs_task_subject": subject or spec.name,
            "hs_task_body": ((body or "") + "\n\n" + marker_line(event_id)).strip(),
            "hs_timestamp": canonical("datetime", due) or "",
            "hs_task_status": "NOT_STARTED",
            "hs_task_priority": spec.priority,
            "hs_task_type": spec.task_type,
        }
        if owner:
            props["hubspot_owner_id"] = owner
        source = {
            c: (v.isoformat() if hasattr(v, "isoformat") else v)
            for c, v in zip(spec.key, keys, strict=True)
        }
        out.setdefault(
            event_id,
            TaskIntent(event_id, spec.name, spec.about, str(about), props, source),
        )
    return [out[k] for k in sorted(out)]
