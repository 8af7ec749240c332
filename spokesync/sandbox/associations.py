"""Associations v4: labeled and default batch create, batch read, archive, label archive,
label definitions and one record's associations (reference §2). Every association is stored in
both directions with the inverse type id, as HubSpot shows it."""

from __future__ import annotations

from typing import Any

from spokesync.sandbox.catalog import AssociationType, ObjectTypeDef
from spokesync.sandbox.errors import (
    ApiError,
    error_body,
    not_found,
    too_many_inputs,
    validation_error,
)
from spokesync.sandbox.objects import ObjectService, now_iso
from spokesync.sandbox.store import Record

MAX_READ_INPUTS = 1_000
MAX_CREATE_INPUTS = 2_000
MAX_PAGE = 500
Result = tuple[int, Any]


class AssociationService:
    def __init__(self, objects: ObjectService) -> None:
        self.objects = objects
        self.store = objects.store

    # ------------------------------------------------------------ helpers
    def _pair(self, from_name: str, to_name: str) -> tuple[ObjectTypeDef, ObjectTypeDef]:
        return self.objects.object_type(from_name), self.objects.object_type(to_name)

    def _record(self, ot: ObjectTypeDef, raw_id: Any) -> Record | None:
        try:
            rec = self.store.records[ot.type_id].get(int(str(raw_id)))
        except ValueError:
            return None
        return None if rec is None or rec.archived else rec

    def _live_id(self, ot: ObjectTypeDef, raw_id: Any) -> int | None:
        """The id of a live record of that type (nothing unpacked: a batch checks 200)."""
        try:
            rid = int(str(raw_id))
        except ValueError:
            return None
        return rid if self.store.is_live(ot.type_id, rid) else None

    def _type(self, a: ObjectTypeDef, b: ObjectTypeDef, type_id: int) -> AssociationType | None:
        for at in self.store.association_types_between(a.type_id, b.type_id):
            if at.type_id == type_id:
                return at
        return None

    def default_type(self, a: ObjectTypeDef, b: ObjectTypeDef) -> AssociationType:
        for at in self.store.association_types_between(a.type_id, b.type_id):
            if at.label is None:
                return at
        raise validation_error(
            f"There is no default association type between {a.name} and {b.name}"
        )

    def _specs(self, a: ObjectTypeDef, b: ObjectTypeDef, types: Any) -> list[AssociationType]:
        if not isinstance(types, list):
            raise validation_error(
                "Cannot deserialize value of type `java.util.HashSet<com.hubspot.crm.associations."
                "AssociationSpec>` from non-array value"
            )
        out = []
        for spec in types:
            if (
                not isinstance(spec, dict)
                or "associationTypeId" not in spec
                or "associationCategory" not in spec
            ):
                raise validation_error(
                    "Invalid input JSON on line 1, column 3. Some required fields were not set: "
                    "[associationCategory, associationTypeId]"
                )
            at = self._type(a, b, int(spec["associationTypeId"]))
            if at is None or at.category != spec["associationCategory"]:
                raise validation_error(
                    f"{spec['associationCategory']} {spec['associationTypeId']} is not a valid "
                    f"association type between {a.name} and {b.name}"
                )
            out.append(at)
        return out

    def _link(
        self, a: ObjectTypeDef, ra: int, b: ObjectTypeDef, rb: int, at: AssociationType
    ) -> None:
        self.store.add_association(a.type_id, ra, b.type_id, rb, at.type_id)
        self.store.add_association(b.type_id, rb, a.type_id, ra, at.inverse_id)

    def _link_with_default(
        self, a: ObjectTypeDef, ra: int, b: ObjectTypeDef, rb: int, specs: list[AssociationType]
    ) -> None:
        default = self.default_type(a, b)
        for at in [default, *[s for s in specs if s.type_id != default.type_id]]:
            self._link(a, ra, b, rb, at)

    def _live_targets(self, a: ObjectTypeDef, rid: int, b: ObjectTypeDef) -> dict[int, set[int]]:
        """Associated record ids (with type ids), leaving out archived records."""
        targets = self.store.associations.get((a.type_id, rid, b.type_id), {})
        return {t: ids for t, ids in targets.items() if self.store.is_live(b.type_id, t)}

    def _labels(self, a: ObjectTypeDef, ra: int, b: ObjectTypeDef, rb: int) -> list[str]:
        ids = self.store.associations.get((a.type_id, ra, b.type_id), {}).get(rb, set())
        return [
            at.label
            for at in self.store.association_types_between(a.type_id, b.type_id)
            if at.type_id in ids and at.label
        ]

    def _types_json(
        self, a: ObjectTypeDef, b: ObjectTypeDef, ids: set[int]
    ) -> list[dict[str, Any]]:
        return [
            at.to_json()
            for at in self.store.association_types_between(a.type_id, b.type_id)
            if at.type_id in ids
        ]

    @staticmethod
    def _inputs(body: Any, limit: int) -> list[dict[str, Any]]:
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            raise validation_error(
                "Invalid input JSON on line 1, column 1: Some required fields were not set: [inputs]"
            )
        if len(body["inputs"]) > limit:
            raise too_many_inputs(len(body["inputs"]), limit)
        return body["inputs"]

    @staticmethod
    def _id(item: Any, key: str) -> Any:
        part = item.get(key) if isinstance(item, dict) else None
        return part.get("id") if isinstance(part, dict) else None

    def _invalid_ids_error(self, ids: list[str]) -> dict[str, Any]:
        return {
            "status": "error",
            "category": "VALIDATION_ERROR",
            "subCategory": "crm.associations.INVALID_OBJECT_IDS",
            "message": "One or more associations are invalid",
            "context": {"INVALID_OBJECT_IDS": ids},
            "errors": [],
            "links": {},
        }

    # ------------------------------------------------------------ inline on create
    def check_inline(
        self, ot: ObjectTypeDef, assoc: Any
    ) -> list[tuple[ObjectTypeDef, Record, list[AssociationType]]]:
        """Validate ``associations`` of a create input; returns what to link."""
        plan = []
        for item in assoc or []:
            to_id = self._id(item, "to")
            types = item.get("types") if isinstance(item, dict) else None
            found = None
            for spec in types or []:
                for (f, t), ats in self.store.association_types.items():
                    if f == ot.type_id and any(
                        a.type_id == spec.get("associationTypeId") for a in ats
                    ):
                        found = self.store.object_types[t]
                        break
                if found:
                    break
            if found is None:
                raise validation_error(
                    "One or more associations are invalid: unknown association type"
                )
            rec = self._record(found, to_id)
            if rec is None:
                raise ApiError(
                    400,
                    error_body(
                        "One or more associations are invalid",
                        "VALIDATION_ERROR",
                        context={"INVALID_OBJECT_IDS": [str(to_id)]},
                    ),
                )
            plan.append((found, rec, self._specs(ot, found, types)))
        return plan

    def apply_inline(
        self,
        ot: ObjectTypeDef,
        rec: Record,
        plan: list[tuple[ObjectTypeDef, Record, list[AssociationType]]],
    ) -> None:
        for to_ot, to_rec, specs in plan:
            self._link_with_default(ot, rec.id, to_ot, to_rec.id, specs)

    # ------------------------------------------------------------ batch endpoints
    def batch_create(self, from_name: str, to_name: str, body: Any) -> Result:
        a, b = self._pair(from_name, to_name)
        started = now_iso()
        inputs = self._inputs(body, MAX_CREATE_INPUTS)
        results, bad = [], []
        planned = []
        for item in inputs:
            fid, tid = self._id(item, "from"), self._id(item, "to")
            specs = self._specs(a, b, item.get("types"))
            ra, rb = self._live_id(a, fid), self._live_id(b, tid)
            if ra is None or rb is None:
                bad.extend(str(x) for x, r in ((fid, ra), (tid, rb)) if r is None)
                continue
            planned.append((ra, rb, specs))
        with self.store.transaction():
            for ra, rb, specs in planned:
                self._link_with_default(a, ra, b, rb, specs)
        for ra, rb, _ in planned:
            results.append(
                {
                    "fromObjectTypeId": a.type_id,
                    "fromObjectId": str(ra),
                    "toObjectTypeId": b.type_id,
                    "toObjectId": str(rb),
                    "labels": self._labels(a, ra, b, rb),
                }
            )
        answer: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if bad:
            answer["numErrors"] = 1
            answer["errors"] = [self._invalid_ids_error(bad)]
        answer["startedAt"], answer["completedAt"] = started, now_iso()
        return (207 if bad else 201), answer

    def _default_result(
        self, a: ObjectTypeDef, ra: int, b: ObjectTypeDef, rb: int
    ) -> list[dict[str, Any]]:
        d = self.default_type(a, b)
        return [
            {
                "from": {"id": str(ra)},
                "to": {"id": str(rb)},
                "associationSpec": {
                    "associationCategory": d.category,
                    "associationTypeId": d.type_id,
                },
            },
            {
                "from": {"id": str(rb)},
                "to": {"id": str(ra)},
                "associationSpec": {
                    "associationCategory": d.category,
                    "associationTypeId": d.inverse_id,
                },
            },
        ]

    def batch_associate_default(self, from_name: str, to_name: str, body: Any) -> Result:
        a, b = self._pair(from_name, to_name)
        self.default_type(a, b)
        started = now_iso()
        inputs = self._inputs(body, MAX_CREATE_INPUTS)
        planned, bad = [], []
        for item in inputs:
            fid, tid = self._id(item, "from"), self._id(item, "to")
            ra, rb = self._live_id(a, fid), self._live_id(b, tid)
            if ra is None or rb is None:
                bad.extend(str(x) for x, r in ((fid, ra), (tid, rb)) if r is None)
                continue
            planned.append((ra, rb))
        with self.store.transaction():
            for ra, rb in planned:
                self._link_with_default(a, ra, b, rb, [])
        results = [r for ra, rb in planned for r in self._default_result(a, ra, b, rb)]
        answer: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if bad:
            answer["numErrors"] = 1
            answer["errors"] = [self._invalid_ids_error(bad)]
        answer["startedAt"], answer["completedAt"] = started, now_iso()
        return (207 if bad else 200), answer

    def batch_read(self, from_name: str, to_name: str, body: Any) -> Result:
        a, b = self._pair(from_name, to_name)
        started = now_iso()
        inputs = self._inputs(body, MAX_READ_INPUTS)
        results, errors = [], []
        for item in inputs:
            fid = item.get("id") if isinstance(item, dict) else None
            rid = self._live_id(a, fid)
            targets = self._live_targets(a, rid, b) if rid is not None else {}
            if not targets:
                errors.append(
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                        "message": f"No {b.singular} is associated with {a.singular} {fid}.",
                        "context": {"fromObjectId": [str(fid)], "toObjectType": [b.singular]},
                        "errors": [],
                        "links": {},
                    }
                )
                continue
            results.append(
                {
                    "from": {"id": str(rid)},
                    "to": [
                        {"toObjectId": tid, "associationTypes": self._types_json(a, b, ids)}
                        for tid, ids in sorted(targets.items())
                    ],
                }
            )
        answer: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if errors:
            answer["numErrors"] = len(errors)
            answer["errors"] = errors
        answer["startedAt"], answer["completedAt"] = started, now_iso()
        return (207 if errors else 200), answer

    def batch_archive(self, from_name: str, to_name: str, body: Any) -> Result:
        a, b = self._pair(from_name, to_name)
        inputs = self._inputs(body, MAX_CREATE_INPUTS)
        with self.store.transaction():
            for item in inputs:
                fid = self._id(item, "from")
                tos = item.get("to") if isinstance(item, dict) else None
                for to in tos if isinstance(tos, list) else []:
                    self._unlink_all(a, fid, b, to.get("id") if isinstance(to, dict) else None)
        return 204, None

    def _unlink_all(self, a: ObjectTypeDef, fid: Any, b: ObjectTypeDef, tid: Any) -> None:
        try:
            fa, tb = int(str(fid)), int(str(tid))
        except ValueError:
            return
        self.store.remove_association(a.type_id, fa, b.type_id, tb, None)
        self.store.remove_association(b.type_id, tb, a.type_id, fa, None)

    def batch_archive_labels(self, from_name: str, to_name: str, body: Any) -> Result:
        a, b = self._pair(from_name, to_name)
        inputs = self._inputs(body, MAX_CREATE_INPUTS)
        default = self.default_type(a, b)
        with self.store.transaction():
            for item in inputs:
                fid, tid = self._id(item, "from"), self._id(item, "to")
                for at in self._specs(a, b, item.get("types")):
                    if at.type_id == default.type_id:
                        self._unlink_all(a, fid, b, tid)
                        continue
                    try:
                        fa, tb = int(str(fid)), int(str(tid))
                    except ValueError:
                        continue
                    self.store.remove_association(a.type_id, fa, b.type_id, tb, at.type_id)
                    self.store.remove_association(b.type_id, tb, a.type_id, fa, at.inverse_id)
        return 204, None

    # ------------------------------------------------------------ labels and single records
    def labels(self, from_name: str, to_name: str) -> Result:
        a, b = self._pair(from_name, to_name)
        return 200, {
            "results": [
                at.to_json() for at in self.store.association_types_between(a.type_id, b.type_id)
            ]
        }

    def create_label(self, from_name: str, to_name: str, body: Any) -> Result:
        a, b = self._pair(from_name, to_name)
        if not isinstance(body, dict) or not body.get("label") or not body.get("name"):
            raise validation_error("Some required fields were not set: [label, name]")
        existing = [
            at for at in self.store.association_types_between(a.type_id, b.type_id) if at.label
        ]
        if sum(1 for at in existing if at.category == "USER_DEFINED") >= 10:
            raise validation_error(
                "At most 10 custom association labels are allowed per object pair"
            )
        if any(at.label == body["label"] for at in existing):
            raise ApiError(409, error_body(f"Label {body['label']} already exists", "CONFLICT"))
        fwd = self.store.next_association_type
        inv = fwd if a.type_id == b.type_id and not body.get("inverseLabel") else fwd + 1
        with self.store.transaction():
            self.store.save_association_type(
                AssociationType(a.type_id, b.type_id, fwd, "USER_DEFINED", body["label"], inv)
            )
            if inv != fwd:
                self.store.save_association_type(
                    AssociationType(
                        b.type_id,
                        a.type_id,
                        inv,
                        "USER_DEFINED",
                        body.get("inverseLabel") or body["label"],
                        fwd,
                    )
                )
        return 200, {
            "results": [{"category": "USER_DEFINED", "typeId": fwd, "label": body["label"]}]
        }

    def list_for_record(
        self, type_name: str, record_id: str, to_name: str, query: dict[str, Any]
    ) -> Result:
        a, b = self._pair(type_name, to_name)
        rec = self._record(a, record_id)
        if rec is None:
            raise not_found()
        limit = min(int(query.get("limit") or MAX_PAGE), MAX_PAGE)
        after = int(query.get("after") or 0)
        targets = sorted(self._live_targets(a, rec.id, b).items())
        targets = [(t, ids) for t, ids in targets if t >= after]
        body: dict[str, Any] = {
            "results": [
                {"toObjectId": t, "associationTypes": self._types_json(a, b, ids)}
                for t, ids in targets[:limit]
            ]
        }
        if len(targets) > limit:
            body["paging"] = {"next": {"after": str(targets[limit][0])}}
        return 200, body

    def put_default(self, type_name: str, record_id: str, to_name: str, to_id: str) -> Result:
        a, b = self._pair(type_name, to_name)
        ra, rb = self._record(a, record_id), self._record(b, to_id)
        if ra is None or rb is None:
            raise not_found()
        started = now_iso()
        with self.store.transaction():
            self._link_with_default(a, ra.id, b, rb.id, [])
        return 200, {
            "status": "COMPLETE",
            "results": self._default_result(a, ra.id, b, rb.id),
            "startedAt": started,
            "completedAt": now_iso(),
        }

    def put_labeled(
        self, type_name: str, record_id: str, to_name: str, to_id: str, body: Any
    ) -> Result:
        a, b = self._pair(type_name, to_name)
        specs = self._specs(a, b, body)
        ra, rb = self._record(a, record_id), self._record(b, to_id)
        if ra is None or rb is None:
            raise not_found()
        with self.store.transaction():
            self._link_with_default(a, ra.id, b, rb.id, specs)
        return 201, {
            "fromObjectTypeId": a.type_id,
            "fromObjectId": ra.id,
            "toObjectTypeId": b.type_id,
            "toObjectId": rb.id,
            "labels": self._labels(a, ra.id, b, rb.id),
        }

    def delete_pair(self, type_name: str, record_id: str, to_name: str, to_id: str) -> Result:
        a, b = self._pair(type_name, to_name)
        with self.store.transaction():
            self._unlink_all(a, record_id, b, to_id)
        return 204, None
