"""A targeted sync: refresh just the records HubSpot told us about, then plan and push them.

A webhook says a record changed in HubSpot (a person edited it, a merge, a creation). For
each object type with a mapping: read those records back (``batch/read``, 100 ids a call),
replace only their rows in the snapshot, then plan and push only those records from the
warehouse's latest day, under the same rules as a nightly run (ownership, as-of guard, dead
letters). An edit to a warehouse-owned field is put back; an edit to a HubSpot-owned field
stands. Records HubSpot no longer has (deleted since) are counted and left to the full refresh.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from spokesync.canonical import canonical
from spokesync.hubspot.client import HubSpotClient
from spokesync.hubspot.schemas import resolve_custom_objects
from spokesync.mapping.spec import MappingSpec
from spokesync.rollout import Rollout
from spokesync.settings import Settings
from spokesync.state.store import StateStore
from spokesync.sync.runner import ObjectSyncSummary, SyncOptions, latest_partition, sync_object

READ_BATCH = 100  # HubSpot's batch/read limit


@dataclass
class TargetedObjectReport:
    object_type: str
    ids_requested: int
    records_read: int = 0
    records_not_found: int = 0
    records_without_id: int = 0  # in HubSpot, but not a record spokesync manages
    values_drifted: int = 0
    sync: ObjectSyncSummary | None = None

    def to_metadata(self) -> dict[str, int | float | str]:
        meta: dict[str, int | float | str] = {
            f"{self.object_type}_ids_requested": self.ids_requested,
            f"{self.object_type}_records_read": self.records_read,
            f"{self.object_type}_records_not_found": self.records_not_found,
            f"{self.object_type}_values_drifted": self.values_drifted,
        }
        if self.sync is not None:
            meta[f"{self.object_type}_records_changed"] = self.sync.records_changed
            if self.sync.push is not None:
                meta[f"{self.object_type}_records_pushed"] = self.sync.push.records_ok
        return meta


@dataclass
class TargetedReport:
    as_of: dt.date
    objects: list[TargetedObjectReport] = field(default_factory=list)
    ignored_types: list[str] = field(default_factory=list)

    @property
    def error(self) -> str | None:
        errors = [o.sync.error for o in self.objects if o.sync is not None and o.sync.error]
        return "; ".join(errors) or None


async def sync_records(
    settings: Settings,
    mappings: Sequence[MappingSpec],
    hubspot_ids: Mapping[str, Sequence[str]],
    client: HubSpotClient,
    run_id: str,
    options: SyncOptions,
) -> TargetedReport:
    """Refresh, plan and push the records ``hubspot_ids`` names (``{object_type: [id, …]}``)."""
    by_type = {m.object_type: m for m in mappings}
    as_of = options.as_of or latest_partition(settings.warehouse_dir)
    report = TargetedReport(as_of=as_of)
    report.ignored_types = sorted(t for t in hubspot_ids if t not in by_type)
    # A custom object's records are read by its objectTypeId: find it before the first read.
    await resolve_custom_objects(client, [by_type[t] for t in hubspot_ids if t in by_type], run_id)
    # Objects others associate to go first (as in a full run).
    ordered = sorted(
        (by_type[t] for t in hubspot_ids if t in by_type),
        key=lambda m: (bool(m.associations), m.object_type),
    )
    for mapping in ordered:
        ids = list(dict.fromkeys(str(i) for i in hubspot_ids[mapping.object_type]))
        obj = TargetedObjectReport(mapping.object_type, ids_requested=len(ids))
        report.objects.append(obj)
        managed = [mapping.id.property, *(f.property for f in mapping.fields)]
        records = []
        for n, start in enumerate(range(0, len(ids), READ_BATCH), start=1):
            records += await client.batch_read(
                mapping.object_type,
                ids[start : start + READ_BATCH],
                managed,
                request_id=f"{run_id}-read-{mapping.object_type}-{n}",
            )
        obj.records_read = len(records)
        obj.records_not_found = len(ids) - len({str(r.get("id")) for r in records})
        types = mapping.property_types
        external = {
            e
            for r in records
            if (
                e := canonical(
                    mapping.id_form, (r.get("properties") or {}).get(mapping.id.property)
                )
            )
        }
        obj.records_without_id = len(records) - len(external)
        with StateStore(settings.state_db, [mapping]) as store:
            drift = store.snapshot.replace_from_hubspot(
                mapping.object_type,
                mapping.id.property,
                records,
                managed,
                types,
                run_id=run_id,
                partial=True,
            )
        obj.values_drifted = drift.values_drifted
        if not external:
            continue
        targeted = dataclasses.replace(
            options,
            as_of=as_of,
            rollout=Rollout(external_ids=frozenset(external)),
            run_id=run_id,
            ensure_properties=False,
        )
        obj.sync = await sync_object(settings, mapping, as_of, run_id, targeted, client)
    return report
