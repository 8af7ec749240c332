"""CRM object records: single-record CRUD, list, and the batch endpoints with HubSpot's
semantics (all-or-nothing without ``objectWriteTraceId``, 207 with it, duplicate ids, upsert by a
unique property, the ``new`` flag, shuffled results). Pure logic: returns (status, body)."""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from spokesync.sandbox import catalog
from spokesync.sandbox.catalog import ObjectTypeDef, Option, PropertyDef
from spokesync.sandbox.errors import (
    ApiError,
    PropertyError,
    duplicate_ids,
    error_body,
    non_unique_id_property,
    not_found,
    property_errors_body,
    property_errors_message,
    too_many_inputs,
    unknown_object_type,
    validation_error,
)
from spokesync.sandbox.history import API_WRITE, PERSON_SOURCES, WriteSource, version_json
from spokesync.sandbox.store import Record, Store
from spokesync.sandbox.validation import MAX_STRING_LENGTH, format_datetime, normalize_value

MAX_BATCH_INPUTS = 100
MAX_LIST_LIMIT = 100
MAX_LIST_LIMIT_WITH_HISTORY = 50  # "reduces the maximum"; HubSpot's own SDK pages by 50 then
FORWARD_ONLY = {"0-1": "lifecyclestage", "0-2": "lifecyclestage"}  # reference §14
PIPELINE_PROPERTY = {"0-3": "pipeline", "0-5": "hs_pipeline"}  # deals, tickets
STAGE_PROPERTY = {"0-3": "dealstage", "0-5": "hs_pipeline_stage"}
Result = tuple[int, Any]


def now_iso() -> str:
    return format_datetime(dt.datetime.now(dt.UTC))


@dataclass(slots=True)
class WriteCounters:
    created: int = 0
    updated: int = 0
    archived: int = 0
    by_type: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, type_name: str, kind: str, n: int) -> None:
        if n:
            setattr(self, kind, getattr(self, kind) + n)
            t = self.by_type.setdefault(type_name, {"created": 0, "updated": 0, "archived": 0})
            t[kind] += n

    def to_json(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "archived": self.archived,
            "written": self.created + self.updated,
            "by_type": self.by_type,
        }


@dataclass(slots=True)
class InputFailure:
    """Why one batch input was not written."""

    http_status: int
    category: str
    message: str
    property_errors: list[PropertyError] = field(default_factory=list)
    context: dict[str, list[str]] = field(default_factory=dict)

    def as_api_error(self, portal_id: int) -> ApiError:
        if self.property_errors:
            return ApiError(400, property_errors_body(self.property_errors, portal_id))
        return ApiError(
            self.http_status, error_body(self.message, self.category, context=self.context or None)
        )

    def as_standard_error(self, trace_id: str | None) -> dict[str, Any]:
        context = dict(self.context)
        if trace_id is not None:
            context["objectWriteTraceId"] = [trace_id]
        return {
            "status": "error",
            "category": self.category,
            "message": self.message,
            "errors": [
                {"message": e.message, "code": e.code, "context": {"propertyName": [e.name]}}
                for e in self.property_errors
            ],
            "context": context,
            "links": {},
        }


# a change notification: (object type, record, values that changed, created?, who wrote)
ChangeListener = Callable[[ObjectTypeDef, Record, dict[str, str], bool, WriteSource], None]
# after a write and its inline associations, in its transaction: [(record, created, values)]
PostWrite = Callable[[ObjectTypeDef, list[tuple[Record, bool, dict[str, str]]]], None]


class ObjectService:
    def __init__(
        self,
        store: Store,
        *,
        shuffle_results: bool = True,
        email_upsert_partial: bool = False,
        seed: int | None = None,
    ) -> None:
        self.store = store
        self.shuffle_results = shuffle_results
        self.email_upsert_partial = email_upsert_partial
        self.counters = WriteCounters()
        self._rng = random.Random(seed)
        self.listeners: list[ChangeListener] = []
        self.post_write: list[PostWrite] = []  # portal automations (auto-created companies)
        self.associations: Any = None  # the AssociationService, for inline associations
        self.search_lag_s = 0.0
        # (type id, record id) -> (visible at, what search showed before: properties or None)
        self._search_pending: dict[tuple[str, int], tuple[float, dict[str, str] | None]] = {}

    # ------------------------------------------------------------ helpers
    @property
    def portal_id(self) -> int:
        return self.store.portal_id

    def object_type(self, name: str) -> ObjectTypeDef:
        ot = self.store.resolve_type(name)
        if ot is None:
            raise unknown_object_type(name)
        return ot

    def admin_type(self, name: str) -> ObjectTypeDef:
        """:meth:`object_type` for the ``/__sandbox`` admin API (not HubSpot's): a custom
        object by its bare name too, as tests and the demo name it."""
        ot = self.store.resolve_type(name) or self.store.custom_type_named(name)
        if ot is None:
            raise unknown_object_type(name)
        return ot

    def _shuffled(self, items: list[Any]) -> list[Any]:
        if self.shuffle_results and len(items) > 1:
            original = list(items)
            while items == original:
                self._rng.shuffle(items)
        return items

    def record_json(
        self,
        ot: ObjectTypeDef,
        rec: Record,
        properties: list[str] | None = None,
        *,
        written: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """``SimplePublicObject``: reads show requested (or default) properties, null if unset;
        writes show the properties written plus the system ones."""
        props: dict[str, str | None]
        if written is not None:
            props = {k: rec.properties.get(k, "") for k in written}
            for k in ot.system_properties:
                props[k] = rec.properties.get(k)
        else:
            names = properties if properties else ot.default_properties
            props = {k: rec.properties.get(k) for k in names}
            for k in ot.system_properties:
                props.setdefault(k, rec.properties.get(k))
        body: dict[str, Any] = {
            "id": str(rec.id),
            "properties": props,
            "createdAt": rec.created_at,
            "updatedAt": rec.updated_at,
            "archived": rec.archived,
        }
        if rec.archived and rec.archived_at:
            body["archivedAt"] = rec.archived_at
        return body

    def attach_history(
        self, ot: ObjectTypeDef, items: list[tuple[dict[str, Any], Record]], names: Any
    ) -> None:
        """Add ``propertiesWithHistory`` (newest version first) to read results. System
        properties have no stored versions: they show their current value, ``CALCULATED``."""
        if not names:
            return
        wanted = [str(n) for n in (names if isinstance(names, list) else [names]) if n]
        stored = self.store.history.read(ot.type_id, [rec.id for _, rec in items], wanted)
        calculated = WriteSource("CALCULATED", None)
        for body, rec in items:
            versions = stored[rec.id]
            for name in ot.system_properties:
                if name in versions and not versions[name] and rec.properties.get(name):
                    stamp = rec.created_at if name != ot.modified_property else rec.updated_at
                    versions[name] = [version_json(rec.properties[name], stamp, calculated)]
            body["propertiesWithHistory"] = versions

    def _options_for(
        self, ot: ObjectTypeDef, prop: PropertyDef, merged: dict[str, str]
    ) -> list[Option] | None:
        """Pipelines and their stages are options that depend on the record."""
        pipeline_prop = PIPELINE_PROPERTY.get(ot.type_id)
        stage_prop = STAGE_PROPERTY[ot.type_id] if pipeline_prop else None
        if pipeline_prop is None or prop.name not in (pipeline_prop, stage_prop):
            return None
        pipelines = catalog.PIPELINES[ot.name]
        chosen = (
            None if prop.name == pipeline_prop else merged.get(pipeline_prop) or pipelines[0][0]
        )
        return _pipeline_options(ot.name, chosen)

    def validate_properties(
        self,
        ot: ObjectTypeDef,
        raw: Any,
        existing: Record | None,
        *,
        creating: bool,
    ) -> tuple[dict[str, str], list[PropertyError]]:
        """Normalised values to write, and every problem with them."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise validation_error("Invalid input JSON: properties must be an object")
        defs = self.store.properties.get(ot.type_id, {})
        errors: list[PropertyError] = []
        values: dict[str, str] = {}
        current = existing.properties if existing else {}
        # pipelines' stages depend on the record's pipeline (the write's, else the stored one)
        merged = (
            {**current, **{k: str(v) for k, v in raw.items() if v is not None}}
            if ot.type_id in PIPELINE_PROPERTY
            else current
        )
        email_name = "email" if ot.type_id == "0-1" else None
        for name, value in raw.items():
            prop = defs.get(name)
            if (
                type(value) is str
                and prop is not None
                and prop.type == "string"
                and not prop.archived
                and not prop.read_only_value
                and name != email_name
                and len(value) <= MAX_STRING_LENGTH
            ):
                values[name] = value  # what normalize_value answers for text, without a call
                continue
            if prop is None or prop.archived:
                msg = f'Property "{name}" does not exist'
                errors.append(PropertyError(name, "PROPERTY_DOESNT_EXIST", msg))
                continue
            if prop.read_only_value:
                msg = f'Property "{name}" is a read-only property and cannot be set'
                errors.append(PropertyError(name, "READ_ONLY_VALUE", msg))
                continue
            try:
                values[name] = normalize_value(
                    prop,
                    value,
                    existing=current.get(name),
                    options=self._options_for(ot, prop, merged)
                    if prop.type == "enumeration"
                    else None,
                    is_email=ot.type_id == "0-1" and name == "email",
                )
            except PropertyError as exc:
                errors.append(exc)
        email = values.get("email") if ot.type_id == "0-1" else None
        if email and email in self.store.blocklist and email != current.get("email"):
            # GDPR-deleted while unknown: HubSpot blocks the address (reference §17; the error
            # body for a blocked address is not recorded, INVALID_EMAIL is the sandbox's choice)
            errors.append(
                PropertyError("email", "INVALID_EMAIL", f"Email address {email} is invalid")
            )
        if creating:
            for name in ot.required:
                if not values.get(name) and not any(e.name == name for e in errors):
                    msg = f"{name} is required"
                    errors.append(PropertyError(name, "REQUIRED_PROPERTY", msg))
        return values, errors

    def _unique_conflict(
        self, ot: ObjectTypeDef, values: dict[str, str], own_id: int | None
    ) -> InputFailure | None:
        for name in self.store.unique_properties(ot.type_id):
            v = values.get(name)
            if not v:
                continue
            holder = self.store.find_by_unique(ot.type_id, name, v)
            if holder is None or holder.id == own_id:
                continue
            if ot.type_id == "0-1" and name == "email":
                return InputFailure(
                    409, "CONFLICT", f"Contact already exists. Existing ID: {holder.id}"
                )
            msg = (
                f'A {ot.singular} with the unique value "{v}" for property "{name}" already '
                f"exists: {holder.id}"
            )
            err = PropertyError(name, "INVALID_UNIQUE_VALUE", msg)
            return InputFailure(
                400, "VALIDATION_ERROR", property_errors_message([err], self.portal_id), [err]
            )
        return None

    def _property_failure(self, errors: list[PropertyError]) -> InputFailure:
        return InputFailure(
            400, "VALIDATION_ERROR", property_errors_message(errors, self.portal_id), errors
        )

    def _forward_only(
        self, ot: ObjectTypeDef, rec: Record, values: dict[str, str], source: WriteSource
    ) -> dict[str, str]:
        """``lifecyclestage`` only moves forward unless cleared first: a backward write by an
        app is dropped silently (the request still answers 200). People in the UI may move it
        back (reference §14)."""
        name = FORWARD_ONLY.get(ot.type_id)
        if name is None or source.source_type in PERSON_SOURCES:
            return values
        new, old = (values.get(name) or "").strip(), (rec.properties.get(name) or "").strip()
        if not new or not old or new == old:
            return values
        order = {o.value: o.display_order for o in self.store.properties[ot.type_id][name].options}
        if order.get(new, -1) < order.get(old, -1):
            return {k: v for k, v in values.items() if k != name}
        return values

    def _apply(
        self,
        ot: ObjectTypeDef,
        changes: list[tuple[Record | None, dict[str, str]]],
        stamp: str,
        source: WriteSource = API_WRITE,
        *,
        notify: bool = True,
    ) -> list[tuple[Record, bool]]:
        """Create or update records in one transaction (the caller's); returns (record,
        created). Each changed value gets a history version attributed to ``source``."""
        new_ids = iter(self.store.allocate_ids(sum(1 for rec, _ in changes if rec is None)))
        out: list[tuple[Record, bool]] = []
        previous: dict[int, dict[str, str]] = {}
        # what the unique index must forget (all values only when search shows the old state)
        keep = None if self.search_lag_s > 0 else self.store.unique.get(ot.type_id, {})
        changed: list[dict[str, str]] = []  # per record: the values that really changed
        for rec, values in changes:
            if rec is None:
                rid = next(new_ids)
                props = {k: v for k, v in values.items() if v != ""}
                changed.append(dict(props))
                props.update(
                    {
                        ot.created_property: stamp,
                        ot.modified_property: stamp,
                        "hs_object_id": str(rid),
                    }
                )
                out.append((Record(rid, props, stamp, stamp), True))
            else:
                previous[rec.id] = (
                    dict(rec.properties)
                    if keep is None
                    else {k: rec.properties[k] for k in keep if k in rec.properties}
                )
                changed.append({})
                for k, v in self._forward_only(ot, rec, values, source).items():
                    if v == rec.properties.get(k, ""):
                        continue
                    changed[-1][k] = v
                    if v == "":
                        rec.properties.pop(k, None)
                    else:
                        rec.properties[k] = v
                rec.properties[ot.modified_property] = stamp
                rec.updated_at = stamp
                out.append((rec, False))
        self.store.save_records(ot.type_id, [r for r, _ in out], previous=previous)
        # one history row per record write: the values it changed, in the order written
        self.store.history.append_writes(
            ot.type_id,
            (
                (rec.id, stamp, source, values)
                for (rec, _), values in zip(out, changed, strict=True)
            ),
        )
        for rec, was_created in out:
            self._lag_search(ot, rec.id, None if was_created else previous[rec.id])
        created = sum(1 for _, c in out if c)
        self.counters.add(ot.name, "created", created)
        self.counters.add(ot.name, "updated", len(out) - created)
        for (rec, was_created), values in zip(out, changed, strict=True):
            for listener in self.listeners if notify else ():  # HubSpot notifies changes only
                listener(ot, rec, values, was_created, source)
        return out

    def _lag_search(self, ot: ObjectTypeDef, rid: int, before: dict[str, str] | None) -> None:
        """With a search lag, search keeps showing ``before`` (None: not found) for a while."""
        if self.search_lag_s <= 0:
            return
        now = time.monotonic()
        key = (ot.type_id, rid)
        pending = self._search_pending.get(key)
        if pending is not None and pending[0] > now:
            before = pending[1]  # still showing an older state: keep it
        self._search_pending[key] = (now + self.search_lag_s, before)

    def forget_search_pending(self) -> None:
        """Search sees every record as it is (a portal reset: no write is pending any more)."""
        self._search_pending.clear()

    def has_search_pending(self) -> bool:
        """Some write is not visible to search yet (a search lag is or was on)."""
        return bool(self._search_pending)

    def search_view(self, ot: ObjectTypeDef, rec: Record) -> dict[str, str] | None:
        """The properties search sees for ``rec`` (None: not in the index yet / archived)."""
        pending = self._search_pending.get((ot.type_id, rec.id))
        if pending is not None:
            if pending[0] > time.monotonic():
                return pending[1]
            del self._search_pending[(ot.type_id, rec.id)]
        return None if rec.archived else rec.properties

    def _after_write(
        self, ot: ObjectTypeDef, items: list[tuple[Record, bool, dict[str, str]]]
    ) -> None:
        for hook in self.post_write:
            hook(ot, items)

    @staticmethod
    def _require_ids(inputs: list[dict[str, Any]]) -> None:
        for i, item in enumerate(inputs):
            if item.get("id") in (None, ""):
                raise validation_error(
                    "Invalid input JSON on line 1, column 1: Some required fields were not set: "
                    f"[id] (inputs[{i}])"
                )

    @staticmethod
    def _inputs(body: Any) -> list[dict[str, Any]]:
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            raise validation_error(
                "Invalid input JSON on line 1, column 1: Some required fields were not set: [inputs]"
            )
        inputs = body["inputs"]
        if len(inputs) > MAX_BATCH_INPUTS:
            raise too_many_inputs(len(inputs), MAX_BATCH_INPUTS)
        for i, item in enumerate(inputs):
            if not isinstance(item, dict):
                raise validation_error(f"Invalid input JSON: inputs[{i}] must be an object")
        return inputs

    @staticmethod
    def _trace_mode(inputs: list[dict[str, Any]]) -> bool:
        return bool(inputs) and all(i.get("objectWriteTraceId") for i in inputs)

    def _batch_answer(
        self,
        ot: ObjectTypeDef,
        inputs: list[dict[str, Any]],
        planned: list[tuple[int, Record | None, dict[str, str]]],
        failures: dict[int, InputFailure],
        *,
        started: str,
        ok_status: int,
        upsert: bool,
        trace_mode: bool,
        plans: dict[int, list[Any]] | None = None,
    ) -> Result:
        if failures and not trace_mode:
            first = failures[min(failures)]
            raise first.as_api_error(self.portal_id)
        stamp = now_iso()
        with self.store.transaction():
            applied = self._apply(ot, [(rec, vals) for _, rec, vals in planned], stamp)
            for (idx, _, _), (rec, _) in zip(planned, applied, strict=True):
                if plans and plans.get(idx) and self.associations is not None:
                    self.associations.apply_inline(ot, rec, plans[idx])
            self._after_write(
                ot, [(r, c, v) for (r, c), (_, _, v) in zip(applied, planned, strict=True)]
            )
        results = []
        for (idx, _, values), (rec, created) in zip(planned, applied, strict=True):
            item = self.record_json(ot, rec, written=values)
            if upsert:
                item["new"] = created
            trace = inputs[idx].get("objectWriteTraceId")
            if trace:
                item["objectWriteTraceId"] = str(trace)
            results.append(item)
        body: dict[str, Any] = {"status": "COMPLETE", "results": self._shuffled(results)}
        if failures:
            body["numErrors"] = len(failures)
            body["errors"] = [
                failures[i].as_standard_error(str(inputs[i].get("objectWriteTraceId")))
                for i in sorted(failures)
            ]
        body["startedAt"] = started
        body["completedAt"] = now_iso()
        return (207 if failures else ok_status), body

    # ------------------------------------------------------------ batch endpoints
    def batch_create(self, type_name: str, body: Any) -> Result:
        ot = self.object_type(type_name)
        started = now_iso()
        inputs = self._inputs(body)
        trace_mode = self._trace_mode(inputs)
        failures: dict[int, InputFailure] = {}
        planned: list[tuple[int, Record | None, dict[str, str]]] = []
        plans: dict[int, list[Any]] = {}
        seen_unique: dict[tuple[str, str], int] = {}
        dup: list[str] = []
        for idx, item in enumerate(inputs):
            values, errors = self.validate_properties(
                ot, item.get("properties"), None, creating=True
            )
            if errors:
                failures[idx] = self._property_failure(errors)
                continue
            for name in self.store.unique_properties(ot.type_id):
                if values.get(name):
                    key = (name, values[name])
                    if key in seen_unique and values[name] not in dup:
                        dup.append(values[name])
                    seen_unique[key] = idx
            conflict = self._unique_conflict(ot, values, None)
            if conflict:
                failures[idx] = conflict
                continue
            try:
                plans[idx] = self._association_plan(ot, item.get("associations"))
            except ApiError as exc:
                failures[idx] = InputFailure(
                    exc.status,
                    exc.body.get("category", "VALIDATION_ERROR"),
                    exc.body["message"],
                    context=exc.body.get("context") or {},
                )
                continue
            planned.append((idx, None, values))
        if dup:
            raise duplicate_ids(dup)
        return self._batch_answer(
            ot,
            inputs,
            planned,
            failures,
            started=started,
            ok_status=201,
            upsert=False,
            trace_mode=trace_mode,
            plans=plans,
        )

    def _resolve_id_property(
        self, ot: ObjectTypeDef, id_property: str | None, *, upsert: bool
    ) -> str | None:
        if not id_property or (id_property == "hs_object_id" and not upsert):
            return None
        allowed = [
            p.name for p in self.store.properties.get(ot.type_id, {}).values() if p.has_unique_value
        ]
        if upsert and ot.type_id == "0-1":
            allowed.append("email")
        if id_property not in allowed:
            raise non_unique_id_property(ot.type_id, id_property, self.portal_id)
        return id_property

    def _key(self, ot: ObjectTypeDef, id_property: str, raw: Any) -> str:
        prop = self.store.properties[ot.type_id][id_property]
        try:
            return normalize_value(
                prop, raw, is_email=ot.type_id == "0-1" and id_property == "email"
            )
        except PropertyError:
            return str(raw).strip().lower() if id_property == "email" else str(raw)

    def _find(self, ot: ObjectTypeDef, raw_id: Any, id_property: str | None) -> Record | None:
        if id_property is None:
            try:
                rec = self.store.records[ot.type_id].get(int(str(raw_id)))
            except ValueError:
                return None
            return None if rec is None or rec.archived else rec
        return self.store.find_by_unique(
            ot.type_id, id_property, self._key(ot, id_property, raw_id)
        )

    def _check_duplicates(self, keys: list[str]) -> None:
        seen: set[str] = set()
        dup: list[str] = []
        for k in keys:
            if k in seen and k not in dup:
                dup.append(k)
            seen.add(k)
        if dup:
            raise duplicate_ids(dup)

    def batch_upsert(self, type_name: str, body: Any) -> Result:
        ot = self.object_type(type_name)
        started = now_iso()
        inputs = self._inputs(body)
        self._require_ids(inputs)
        trace_mode = self._trace_mode(inputs)
        id_props = {i.get("idProperty") for i in inputs}
        resolved = {p: self._resolve_id_property(ot, p, upsert=True) for p in id_props}
        if "email" in resolved.values() and not self.email_upsert_partial:
            trace_mode = False  # "Partial upserts are not supported when using email"
        keys = []
        for item in inputs:
            prop = resolved[item.get("idProperty")]
            keys.append(self._key(ot, prop, item.get("id")) if prop else str(item.get("id")))
        self._check_duplicates(keys)
        failures: dict[int, InputFailure] = {}
        planned: list[tuple[int, Record | None, dict[str, str]]] = []
        for idx, (item, key) in enumerate(zip(inputs, keys, strict=True)):
            prop = resolved[item.get("idProperty")]
            existing = (
                self._find(ot, item.get("id"), None)
                if prop is None
                else self.store.find_by_unique(ot.type_id, prop, key)  # key: _key(id)
            )
            if existing is None and prop is None:
                failures[idx] = self._not_found_failure(ot, [key])
                continue
            raw = dict(item.get("properties") or {})
            if prop is not None:
                raw[prop] = item.get("id")
            values, errors = self.validate_properties(ot, raw, existing, creating=existing is None)
            if errors:
                failures[idx] = self._property_failure(errors)
                continue
            conflict = self._unique_conflict(ot, values, existing.id if existing else None)
            if conflict:
                failures[idx] = conflict
                continue
            planned.append((idx, existing, values))
        return self._batch_answer(
            ot,
            inputs,
            planned,
            failures,
            started=started,
            ok_status=200,
            upsert=True,
            trace_mode=trace_mode,
        )

    def _not_found_failure(self, ot: ObjectTypeDef, ids: list[str]) -> InputFailure:
        return InputFailure(
            404,
            "OBJECT_NOT_FOUND",
            f"Could not get some {ot.upper} objects, they may be deleted or not exist. "
            "Check that ids are valid.",
            context={"ids": ids},
        )

    def batch_update(self, type_name: str, body: Any) -> Result:
        ot = self.object_type(type_name)
        started = now_iso()
        inputs = self._inputs(body)
        self._require_ids(inputs)
        trace_mode = self._trace_mode(inputs)
        resolved = {
            p: self._resolve_id_property(ot, p, upsert=False)
            for p in {i.get("idProperty") for i in inputs}
        }
        keys = []
        for item in inputs:
            prop = resolved[item.get("idProperty")]
            keys.append(self._key(ot, prop, item.get("id")) if prop else str(item.get("id")))
        self._check_duplicates(keys)
        failures: dict[int, InputFailure] = {}
        missing: list[tuple[int, str]] = []
        planned: list[tuple[int, Record | None, dict[str, str]]] = []
        for idx, (item, key) in enumerate(zip(inputs, keys, strict=True)):
            existing = self._find(ot, item.get("id"), resolved[item.get("idProperty")])
            if existing is None:
                missing.append((idx, key))
                continue
            values, errors = self.validate_properties(
                ot, item.get("properties"), existing, creating=False
            )
            if errors:
                failures[idx] = self._property_failure(errors)
                continue
            conflict = self._unique_conflict(ot, values, existing.id)
            if conflict:
                failures[idx] = conflict
                continue
            planned.append((idx, existing, values))
        if failures and not trace_mode:
            raise failures[min(failures)].as_api_error(self.portal_id)
        status, answer = self._batch_answer(
            ot,
            inputs,
            planned,
            failures,
            started=started,
            ok_status=200,
            upsert=False,
            trace_mode=trace_mode,
        )
        if missing:
            nf = self._not_found_failure(ot, [k for _, k in missing]).as_standard_error(None)
            answer.setdefault("errors", []).append(nf)
            answer["numErrors"] = len(answer["errors"])
            answer = {
                k: answer[k]
                for k in ("status", "results", "numErrors", "errors", "startedAt", "completedAt")
            }
            status = 207
        return status, answer

    def batch_archive(self, type_name: str, body: Any) -> Result:
        ot = self.object_type(type_name)
        inputs = self._inputs(body)
        stamp = now_iso()
        recs = []
        for item in inputs:
            rec = self._find(ot, item.get("id"), None)
            if rec is not None and rec not in recs:
                recs.append(rec)
        self._archive(ot, recs, stamp)
        return 204, None

    def _archive(self, ot: ObjectTypeDef, recs: list[Record], stamp: str) -> None:
        if not recs:
            return
        previous = {r.id: dict(r.properties) for r in recs}
        for rec in recs:
            rec.archived, rec.archived_at, rec.updated_at = True, stamp, stamp
            self._lag_search(ot, rec.id, previous[rec.id])
        with self.store.transaction():
            self.store.save_records(ot.type_id, recs, previous=previous)
        self.counters.add(ot.name, "archived", len(recs))

    def batch_read(self, type_name: str, body: Any, archived: bool = False) -> Result:
        ot = self.object_type(type_name)
        started = now_iso()
        inputs = self._inputs(body)
        self._require_ids(inputs)
        prop = body.get("idProperty")
        prop = self._resolve_id_property(ot, prop, upsert=True) if prop else None
        properties = body.get("properties") or None
        results, missing = [], []
        found: list[tuple[dict[str, Any], Record]] = []
        for item in inputs:
            rec = self._find_any(ot, item.get("id"), prop, archived)
            if rec is None:
                missing.append(str(item.get("id")))
            else:
                found.append((self.record_json(ot, rec, properties), rec))
        self.attach_history(ot, found, body.get("propertiesWithHistory"))
        results = [b for b, _ in found]
        answer: dict[str, Any] = {"status": "COMPLETE", "results": self._shuffled(results)}
        if missing:
            answer["numErrors"] = 1
            answer["errors"] = [
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": self._not_found_failure(ot, missing).message,
                    "context": {"ids": missing},
                    "errors": [],
                    "links": {},
                }
            ]
        answer["startedAt"] = started
        answer["completedAt"] = now_iso()
        return (207 if missing else 200), answer

    def _find_any(
        self, ot: ObjectTypeDef, raw_id: Any, prop: str | None, archived: bool
    ) -> Record | None:
        if prop is not None:
            rec = self._find(ot, raw_id, prop)
        else:
            try:
                rec = self.store.records[ot.type_id].get(int(str(raw_id)))
            except ValueError:
                rec = None
        if rec is None or rec.archived != archived:
            return None
        return rec

    # ------------------------------------------------------------ single records
    def create(self, type_name: str, body: Any) -> Result:
        ot = self.object_type(type_name)
        if not isinstance(body, dict):
            raise validation_error("Invalid input JSON: expected an object")
        values, errors = self.validate_properties(ot, body.get("properties"), None, creating=True)
        if errors:
            raise self._property_failure(errors).as_api_error(self.portal_id)
        conflict = self._unique_conflict(ot, values, None)
        if conflict:
            raise conflict.as_api_error(self.portal_id)
        plan = self._association_plan(ot, body.get("associations"))
        with self.store.transaction():
            [(rec, _)] = self._apply(ot, [(None, values)], now_iso())
            if plan and self.associations is not None:
                self.associations.apply_inline(ot, rec, plan)
            self._after_write(ot, [(rec, True, values)])
        return 201, self.record_json(ot, rec, written=values)

    def _association_plan(self, ot: ObjectTypeDef, assoc: Any) -> list[Any]:
        if not assoc or self.associations is None:
            return []
        return self.associations.check_inline(ot, assoc)

    def get(self, type_name: str, record_id: str, query: dict[str, Any]) -> Result:
        ot = self.object_type(type_name)
        prop = query.get("idProperty")
        prop = self._resolve_id_property(ot, prop, upsert=True) if prop else None
        archived = str(query.get("archived", "false")).lower() == "true"
        rec = self._find_any(ot, record_id, prop, archived)
        if rec is None and prop is None and not archived:
            rec = self._survivor(ot, record_id)  # a merged-away id answers with the survivor
        if rec is None:
            raise not_found()
        body = self.record_json(ot, rec, query.get("properties") or None)
        self.attach_history(ot, [(body, rec)], query.get("propertiesWithHistory"))
        return 200, body

    def _survivor(self, ot: ObjectTypeDef, raw_id: Any) -> Record | None:
        try:
            new_id = self.store.survivor_id(ot.type_id, int(str(raw_id)))
        except ValueError:
            return None
        rec = None if new_id is None else self.store.records[ot.type_id].get(new_id)
        return None if rec is None or rec.archived else rec

    def update(self, type_name: str, record_id: str, body: Any, query: dict[str, Any]) -> Result:
        ot = self.object_type(type_name)
        prop = query.get("idProperty")
        # a single PATCH takes contacts' email as idProperty (unlike batch/update)
        prop = None if prop == "hs_object_id" else prop
        prop = self._resolve_id_property(ot, prop, upsert=True) if prop else None
        rec = self._find(ot, record_id, prop)
        if rec is None and prop is None:
            rec = self._survivor(ot, record_id)  # merged-away ids work with the single PATCH
        if rec is None:
            raise not_found()
        if not isinstance(body, dict):
            raise validation_error("Invalid input JSON: expected an object")
        values, errors = self.validate_properties(ot, body.get("properties"), rec, creating=False)
        if errors:
            raise self._property_failure(errors).as_api_error(self.portal_id)
        conflict = self._unique_conflict(ot, values, rec.id)
        if conflict:
            raise conflict.as_api_error(self.portal_id)
        with self.store.transaction():
            self._apply(ot, [(rec, values)], now_iso())
            self._after_write(ot, [(rec, False, values)])
        return 200, self.record_json(ot, rec, written=values)

    def write_as(
        self,
        type_name: str,
        record_id: Any,
        properties: Any,
        source: WriteSource,
        stamp: str | None = None,
    ) -> Record:
        """Create (``record_id`` None) or update a record as someone else than the API caller
        (a person in the CRM UI, an import): HubSpot's validation, that source in the history,
        ``stamp`` (default now) as the write time. Read-only values are refused as usual."""
        ot = self.object_type(type_name)
        rec = None if record_id is None else self._find(ot, record_id, None)
        if record_id is not None and rec is None:
            raise not_found()
        values, errors = self.validate_properties(ot, properties, rec, creating=rec is None)
        if errors:
            raise self._property_failure(errors).as_api_error(self.portal_id)
        conflict = self._unique_conflict(ot, values, rec.id if rec else None)
        if conflict:
            raise conflict.as_api_error(self.portal_id)
        [(out, created)] = self._apply(ot, [(rec, values)], stamp or now_iso(), source)
        self._after_write(ot, [(out, created, values)])
        return out

    def archive(self, type_name: str, record_id: str) -> Result:
        ot = self.object_type(type_name)
        rec = self._find(ot, record_id, None)
        if rec is not None:
            self._archive(ot, [rec], now_iso())
        return 204, None

    def list(self, type_name: str, query: dict[str, Any], base_url: str) -> Result:
        ot = self.object_type(type_name)
        limit = _int_param(query.get("limit"), 10, "limit")
        if limit < 1 or limit > MAX_LIST_LIMIT:
            raise validation_error(f"limit must be between 1 and {MAX_LIST_LIMIT}, not {limit}")
        history = query.get("propertiesWithHistory")
        if history:
            limit = min(limit, MAX_LIST_LIMIT_WITH_HISTORY)
        after = _int_param(query.get("after"), 0, "after")
        archived = str(query.get("archived", "false")).lower() == "true"
        records = self.store.records[ot.type_id]
        all_ids = self.store.sorted_ids(ot.type_id)
        page: list[int] = []
        next_id: int | None = None
        for i in range(bisect.bisect_left(all_ids, after), len(all_ids)):
            rid = all_ids[i]
            if records.is_archived(rid) != archived:
                continue
            if len(page) == limit:
                next_id = rid
                break
            page.append(rid)
        found = [
            (self.record_json(ot, records[i], query.get("properties") or None), records[i])
            for i in page
        ]
        self.attach_history(ot, found, history)
        body: dict[str, Any] = {"results": [b for b, _ in found]}
        if next_id is not None:
            nxt = str(next_id)
            body["paging"] = {
                "next": {
                    "after": nxt,
                    "link": f"{base_url}/crm/v3/objects/{ot.name}?limit={limit}&after={nxt}",
                }
            }
        return 200, body


@functools.cache
def _pipeline_options(object_name: str, pipeline: str | None) -> list[Option]:
    """The pipelines as options (``pipeline`` None), or one pipeline's stages (the catalog's
    pipelines never change, so each list is built once)."""
    pipelines = catalog.PIPELINES[object_name]
    if pipeline is None:
        return [Option(label, pid, i) for i, (pid, label, _) in enumerate(pipelines)]
    for pid, _, stages in pipelines:
        if pid == pipeline:
            return [Option(label, sid, i) for i, (sid, label, _) in enumerate(stages)]
    return []


def _int_param(value: Any, default: int, name: str) -> int:
    if value in (None, ""):
        return default
    try:
        return int(str(value))
    except ValueError as exc:
        raise validation_error(f"{name} must be an integer, not {value!r}") from exc
