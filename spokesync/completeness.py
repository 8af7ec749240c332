"""Association completeness for reports, KPIs and checks.

For each kind of link the workflows need (contact→company, deal→company, deal→contact with its
"Billing contact" label, ticket→company, ticket→contact, task→company, subscription→company and
→deal), the share of desired links HubSpot confirmed. The push measures the kinds of each mapping
after its associations (:func:`measure_plan`), the task step measures task→record links
(:func:`measure_tasks`); both are recorded in the state store
(:mod:`spokesync.state.completeness`). :func:`latest_completeness` reads the newest figure of
every kind without opening the store for writing (a running sync keeps its lock).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from spokesync.diff import ChangePlan
from spokesync.state.completeness import LATEST_SQL, LinkCompleteness
from spokesync.state.store import StateStore
from spokesync.warehouse import sql_literal

__all__ = ["LinkCompleteness", "latest_completeness", "measure_plan", "measure_tasks"]


def measure_plan(store: StateStore, plan: ChangePlan, run_id: str) -> list[LinkCompleteness]:
    """Measure and record the completeness of the plan's kinds of links (after the push).

    A kind whose records want no link at all is reported with 0 desired, so a mapping whose
    SQL stopped producing targets shows up instead of vanishing from the report."""
    measured = store.completeness.measure(plan.association_table(changed_only=False))
    seen = {(m.to_type, m.label) for m in measured}
    for spec in plan.association_specs:
        if (spec.to_object_type, spec.label or "") not in seen:
            seen.add((spec.to_object_type, spec.label or ""))
            measured.append(
                LinkCompleteness(plan.object_type, spec.to_object_type, spec.label or "", 0, 0)
            )
    measured.sort(key=lambda m: (m.to_type, m.label))
    store.completeness.record(run_id, measured)
    return [_stamped(m, run_id) for m in measured]


def measure_tasks(
    store: StateStore,
    about_type: str,
    desired: int,
    confirmed: int,
    waiting: int,
    run_id: str,
) -> LinkCompleteness:
    """task→record completeness of one trigger's events: every event wants one task associated
    with its record; a task exists with its link once created (the link is part of the create
    call) or recovered by its marker."""
    m = LinkCompleteness("tasks", about_type, "", desired, confirmed, waiting)
    store.completeness.record(run_id, [m])
    return _stamped(m, run_id)


def _stamped(m: LinkCompleteness, run_id: str) -> LinkCompleteness:
    return LinkCompleteness(
        m.from_type, m.to_type, m.label, m.desired, m.confirmed, m.waiting, run_id
    )


def latest_completeness(state_db: Path, from_type: str | None = None) -> list[LinkCompleteness]:
    """The newest measurement of every kind of link (of ``from_type``'s links, or all), read
    through a read-only attach. An absent store, one without measurements yet, or one another
    process is writing gives ``[]``."""
    if not Path(state_db).exists():
        return []
    con = duckdb.connect()
    try:
        try:
            con.execute(f"ATTACH {sql_literal(str(state_db))} AS st (READ_ONLY)")
        except duckdb.IOException:
            return []
        con.execute("USE st")
        tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        if "association_completeness" not in tables:
            return []
        rows = con.execute(LATEST_SQL, {"ft": from_type}).fetchall()
    finally:
        con.close()
    return [LinkCompleteness(*r) for r in rows]
