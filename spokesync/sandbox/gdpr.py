"""``POST /crm/v3/objects/contacts/gdpr-delete`` (reference §17): the contact, its history, its
associations and its merged-away ids go for good (not restorable, unlike ``DELETE``); an email
that matches no contact is put on a blocklist, so it cannot be used again."""

from __future__ import annotations

from typing import Any

from spokesync.emails import normalise_email
from spokesync.sandbox.errors import validation_error
from spokesync.sandbox.objects import ObjectService


class GdprService:
    def __init__(self, objects: ObjectService) -> None:
        self.objects = objects
        self.store = objects.store

    def delete(self, type_name: str, body: Any) -> tuple[int, Any]:
        ot = self.objects.object_type(type_name)
        if not isinstance(body, dict) or not body.get("objectId"):
            raise validation_error(
                "Invalid input JSON on line 1, column 1: Some required fields were not set: "
                "[objectId]"
            )
        id_property = body.get("idProperty") or None
        if id_property == "hs_object_id":
            id_property = None
        if id_property is not None:
            id_property = self.objects._resolve_id_property(ot, id_property, upsert=True)
        raw = body["objectId"]
        rec = self.objects._find(ot, raw, id_property)
        if rec is None and id_property is None:
            rec = self.objects._survivor(ot, raw)
        if rec is None and id_property is None:
            try:  # an archived record (in the recycling bin) is deleted too
                rec = self.store.records[ot.type_id].get(int(str(raw)))
            except ValueError:
                rec = None
        with self.store.transaction():
            if rec is None:
                if ot.type_id == "0-1" and id_property == "email":
                    self.store.block_email(normalise_email(raw))
                return 204, None
            for tt, targets in list(self.store.associations.of_record(ot.type_id, rec.id)):
                for target in targets:
                    self.store.remove_association(ot.type_id, rec.id, tt, target, None)
                    self.store.remove_association(tt, target, ot.type_id, rec.id, None)
            self.store.forget_records(ot.type_id, [rec.id])
            self.store.forget_merges(ot.type_id, rec.id)
            self.store.history.forget(ot.type_id, rec.id)
        self.objects.counters.add(ot.name, "archived", 1)
        return 204, None
