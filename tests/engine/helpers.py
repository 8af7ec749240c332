"""Test helpers: a fake push that confirms every change, as HubSpot would on success."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from spokesync.changes import ConfirmedWrite, RecordChange
from spokesync.diff import ChangePlan, plan_changes
from spokesync.mapping import MappingSpec
from spokesync.rollout import Rollout
from spokesync.state import StateStore


def plan(
    state_db: Path,
    warehouse_dir: Path,
    mapping: MappingSpec,
    as_of: dt.date,
    rollout: Rollout | None = None,
) -> tuple[ChangePlan, list[RecordChange]]:
    p = plan_changes(state_db, warehouse_dir, mapping, as_of, rollout)
    changes = [c for batch in p.batches(100) for c in batch]
    return p, changes


def confirm_all(
    state_db: Path, mapping: MappingSpec, changes: list[RecordChange], run_id: str = "run"
) -> None:
    """Write-through every change with a HubSpot id derived from the external id."""
    writes = [
        ConfirmedWrite(
            object_type=c.object_type,
            external_id=c.external_id,
            hubspot_id=c.hubspot_id or f"h-{c.external_id}",
            properties=dict(c.properties),
            as_of=c.as_of,
            created=c.kind == "create",
        )
        for c in changes
    ]
    with StateStore(state_db, [mapping]) as store:
        store.record_confirmed(writes, run_id)


def sync(
    state_db: Path, warehouse_dir: Path, mapping: MappingSpec, as_of: dt.date
) -> list[RecordChange]:
    p, changes = plan(state_db, warehouse_dir, mapping, as_of)
    p.close()
    confirm_all(state_db, mapping, changes)
    return changes
