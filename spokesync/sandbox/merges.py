"""``POST /crm/v3/objects/{type}/merge`` (reference §12).

A merge makes a **new** record with a new id (HubSpot's current behaviour for contacts and
companies; the sandbox does it for every object type, the strictest reading): the primary's
values win where set, the secondary's fill the gaps, ``lifecyclestage`` keeps the stage furthest
down the funnel, contacts keep the primary's ``email`` and gain the secondary's in
``hs_additional_emails`` (companies: ``domain`` / ``hs_additional_domains``), and
``hs_merged_object_ids`` lists every id merged so far (``;``-separated, ascending). Both old ids
then answer single-record GET and PATCH with the survivor; they are gone from list, search,
batch read (207 ``OBJECT_NOT_FOUND``) and batch update. Associations of both move to the
survivor; a secondary's extra *Primary* label is dropped when the primary already has one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from spokesync.sandbox.catalog import ObjectTypeDef
from spokesync.sandbox.errors import ApiError, error_body, not_found, validation_error
from spokesync.sandbox.history import WriteSource
from spokesync.sandbox.objects import FORWARD_ONLY, ObjectService, now_iso
from spokesync.sandbox.store import Record

MAX_IDENTITIES = 250  # "Cannot have more than 250 identities on a profile" (414)
MERGE_SOURCE = {"0-1": "MERGE_CONTACTS", "0-2": "MERGE_COMPANIES"}
# (property kept from the primary, the multi-value property the secondary's value joins)
SECONDARY_VALUES = {
    "0-1": ("email", "hs_additional_emails"),
    "0-2": ("domain", "hs_additional_domains"),
}
MERGED_IDS = "hs_merged_object_ids"


def _members(value: str | None) -> list[str]:
    return [v for v in (value or "").split(";") if v]


class MergeService:
    def __init__(self, objects: ObjectService) -> None:
        self.objects = objects
        self.store = objects.store
        # (type, primary id, merged-away ids, survivor id, properties moved) after an API merge
        self.listeners: list[Callable[[ObjectTypeDef, int, list[int], int, int], None]] = []

    def _live(self, ot: ObjectTypeDef, raw: Any) -> Record | None:
        try:
            rid = int(str(raw))
        except ValueError:
            return None
        rec = self.store.records[ot.type_id].get(rid)
        return None if rec is None or rec.archived else rec

    def merge(self, type_name: str, body: Any) -> tuple[int, Any]:
        ot = self.objects.object_type(type_name)
        if (
            not isinstance(body, dict)
            or not body.get("primaryObjectId")
            or not body.get("objectIdToMerge")
        ):
            raise validation_error(
                "Invalid input JSON on line 1, column 1: Some required fields were not set: "
                "[primaryObjectId, objectIdToMerge]"
            )
        primary, secondary = (
            self._live(ot, body["primaryObjectId"]),
            self._live(ot, body["objectIdToMerge"]),
        )
        if primary is None or secondary is None:
            raise not_found()
        if primary.id == secondary.id:
            raise validation_error(f"Cannot merge {ot.singular} {primary.id} into itself")
        merged_ids = sorted(
            {primary.id, secondary.id}
            | {int(i) for r in (primary, secondary) for i in _members(r.properties.get(MERGED_IDS))}
        )
        if len(merged_ids) + 1 > MAX_IDENTITIES:
            raise ApiError(414, error_body("Cannot have more than 250 identities on a profile"))
        stamp = now_iso()
        moved = sum(1 for k in secondary.properties if k not in primary.properties)
        with self.store.transaction():
            survivor = self._merge(ot, primary, secondary, merged_ids, stamp)
        for listener in self.listeners:
            listener(ot, primary.id, [secondary.id], survivor.id, moved)
        return 200, self.objects.record_json(ot, survivor, [*ot.default_properties, MERGED_IDS])

    def _values(
        self, ot: ObjectTypeDef, primary: Record, secondary: Record, merged_ids: list[int]
    ) -> dict[str, str]:
        props = {**secondary.properties, **primary.properties}
        stage = FORWARD_ONLY.get(ot.type_id)
        if stage:
            order = {
                o.value: o.display_order for o in self.store.properties[ot.type_id][stage].options
            }
            stages = [
                r.properties.get(stage) for r in (primary, secondary) if r.properties.get(stage)
            ]
            if stages:
                props[stage] = max(stages, key=lambda v: order.get(v.strip(), -1))
        if ot.type_id in SECONDARY_VALUES:
            key, extra = SECONDARY_VALUES[ot.type_id]
            kept = props.get(key)
            others: list[str] = []
            for rec in (primary, secondary):
                for v in [rec.properties.get(key), *_members(rec.properties.get(extra))]:
                    if v and v != kept and v not in others:
                        others.append(v)
            if others:
                props[extra] = ";".join(others)
        props[MERGED_IDS] = ";".join(str(i) for i in merged_ids)
        return props

    def _merge(
        self,
        ot: ObjectTypeDef,
        primary: Record,
        secondary: Record,
        merged_ids: list[int],
        stamp: str,
    ) -> Record:
        props = self._values(ot, primary, secondary, merged_ids)
        [new_id] = self.store.allocate_ids(1)
        created = min(primary.created_at, secondary.created_at)
        props.update({ot.modified_property: stamp, "hs_object_id": str(new_id)})
        props[ot.created_property] = created
        survivor = Record(new_id, props, created, stamp)
        old = [primary.id, secondary.id]
        self.store.forget_records(ot.type_id, old)
        self.store.save_records(ot.type_id, [survivor])
        self.store.save_merge(ot.type_id, old, new_id)
        self.store.history.move(ot.type_id, old, new_id)
        source = WriteSource(MERGE_SOURCE.get(ot.type_id, "MERGE_OBJECTS"), None)
        skip = {ot.modified_property, ot.created_property, "hs_object_id"}
        self.store.history.append(
            ot.type_id,
            [
                (new_id, k, v, stamp, source)
                for k, v in props.items()
                if k not in skip and v != primary.properties.get(k)
            ],
        )
        self._move_associations(ot, primary.id, secondary.id, new_id)
        self.objects._lag_search(ot, new_id, None)
        return survivor

    def _move_associations(self, ot: ObjectTypeDef, primary: int, secondary: int, new: int) -> None:
        store = self.store
        for to_type in list(store.object_types):
            primary_labels = {
                at.type_id
                for at in store.association_types_between(ot.type_id, to_type)
                if at.label == "Primary"
            }
            has_primary = any(
                ids & primary_labels
                for ids in store.associations.get((ot.type_id, primary, to_type), {}).values()
            )
            for old in (primary, secondary):
                targets = {
                    t: set(ids)  # copies: removing a pair empties the stored set
                    for t, ids in store.associations.get((ot.type_id, old, to_type), {}).items()
                }
                for target, ids in targets.items():
                    store.remove_association(ot.type_id, old, to_type, target, None)
                    back = store.associations.get((to_type, target, ot.type_id), {}).get(old, set())
                    back_ids = set(back)
                    store.remove_association(to_type, target, ot.type_id, old, None)
                    if to_type == ot.type_id and target in (primary, secondary):
                        continue  # a link between the two merged records disappears
                    keep = set(ids)
                    if old == secondary and has_primary:
                        keep -= primary_labels
                    inverse = {
                        at.inverse_id
                        for at in store.association_types_between(ot.type_id, to_type)
                        if at.type_id in (ids - keep)
                    }
                    for type_id in keep:
                        store.add_association(ot.type_id, new, to_type, target, type_id)
                    for type_id in back_ids - inverse:
                        store.add_association(to_type, target, ot.type_id, new, type_id)
