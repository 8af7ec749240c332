"""Task intents: the rows of a task trigger's SQL for one ``as_of``, as tasks to create.

Runs the trigger's query in DuckDB over the warehouse views (and HubSpot's reference tables),
evaluates its subject/body/due expressions, and gives each row its deterministic event id.
Nothing here talks to HubSpot; :mod:`spokesync.hubspot.tasks` creates the tasks exactly once.

Not every row is a task: an event computed from days the warehouse does not hold (its
``complete_window`` has a missing partition — the first days of data, a day whose export never
landed) is not real, and an event more than ``lookback_days`` before the newest data is history.
Both are counted in the :class:`TaskPlan`, never created.
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
    occurred_on: dt.date | None = None  # the event's day (the trigger's occurred_column)

    @property
    def marker(self) -> str:
        return self.event_id


@dataclass(frozen=True, slots=True)
class TaskPlan:
    """A trigger's events for one run, sorted into the tasks to create and the rest."""

    intents: list[TaskIntent]  # real and recent: each must exist as exactly one task
    incomplete: list[TaskIntent]  # computed from days missing in the warehouse: not real
    stale: list[TaskIntent]  # older than lookback_days before the newest data: history
    newest: dt.date  # the newest data the age is counted back from
    missing_days: list[dt.date] = field(default_factory=list)  # of the incomplete windows

    @property
    def found(self) -> int:
        return len(self.intents) + len(self.incomplete) + len(self.stale)


def _params(
    spec: TaskTriggerSpec, as_of: dt.date, sql: str, since: dt.date | None = None
) -> dict[str, object]:
    values: dict[str, object] = {
        "as_of": as_of,
        "since": since or as_of,
        "lookback_days": spec.lookback_days,
        **spec.parameters,
    }
    return {k: v for k, v in values.items() if re.search(rf"\${k}\b", sql)}


def marker_line(event_id: str) -> str:
    """The line every task body ends with: its event id, one search token."""
    return f"spokesync event {event_id}"


def plan_task_intents(
    warehouse_dir: Path, spec: TaskTriggerSpec, as_of: dt.date, since: dt.date | None = None
) -> list[TaskIntent]:
    """The tasks to create for ``as_of``: :func:`plan_tasks`' real and recent events."""
    return plan_tasks(warehouse_dir, spec, as_of, since).intents


def plan_tasks(
    warehouse_dir: Path, spec: TaskTriggerSpec, as_of: dt.date, since: dt.date | None = None
) -> TaskPlan:
    """The trigger's events for ``as_of`` (one intent per distinct event id, id order), sorted
    into tasks to create, incomplete windows and stale events.

    ``since``: the first day of a backfill's range (bound as ``$since``; ``as_of`` for one
    day), so a range run finds the events of every day in it, as daily runs would have. The
    age limit counts back from the newest partition in the warehouse (or ``as_of`` if later),
    not from ``as_of``: a backfill replaying old days fires what the nightly runs fire today,
    whatever range it covers."""
    wh = Path(warehouse_dir)
    newest = max(as_of, warehouse.newest_partition(wh) or as_of)
    present = (
        set(warehouse.partition_days(wh, spec.complete_window.table))
        if spec.complete_window is not None
        else set()
    )
    con = warehouse.connect(wh)
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
            + ", "
            + (
                f"CAST({quote_identifier(spec.occurred_column)} AS DATE)"
                if spec.occurred_column
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
        keys, (about, subject, body, due, owner, occurred) = row[:n], row[n:]
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
            TaskIntent(event_id, spec.name, spec.about, str(about), props, source, occurred),
        )
    plan = TaskPlan([], [], [], newest)
    missing: set[dt.date] = set()
    for event_id in sorted(out):
        intent = out[event_id]
        day = intent.occurred_on
        if day is not None and spec.complete_window is not None:
            window = [day - dt.timedelta(days=i) for i in range(spec.complete_window.days)]
            gaps = [d for d in window if d not in present]
            if gaps:
                missing.update(gaps)
                plan.incomplete.append(intent)
                continue
        if day is not None and day <= newest - dt.timedelta(days=spec.lookback_days):
            plan.stale.append(intent)
            continue
        plan.intents.append(intent)
    plan.missing_days.extend(sorted(missing))
    return plan
