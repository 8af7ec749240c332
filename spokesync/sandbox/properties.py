"""Properties and property groups, custom object schemas, owners and pipelines — the portal's
metadata APIs (reference §3.1, §6.1)."""

from __future__ import annotations

import re
from typing import Any

from spokesync.sandbox import catalog
from spokesync.sandbox.catalog import AssociationType, ObjectTypeDef, Option, PropertyDef
from spokesync.sandbox.errors import ApiError, error_body, not_found, validation_error
from spokesync.sandbox.objects import ObjectService, now_iso
from spokesync.sandbox.validation import VALID_FIELD_TYPES

MAX_UNIQUE_PROPERTIES = 10
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_SCHEMA_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
Result = tuple[int, Any]


def _inputs(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise validation_error(
            "Invalid input JSON on line 1, column 1: Some required fields were not set: [inputs]"
        )
    return [i if isinstance(i, dict) else {} for i in body["inputs"]]


class MetadataService:
    def __init__(self, objects: ObjectService) -> None:
        self.objects = objects
        self.store = objects.store

    # ------------------------------------------------------------ properties
    def list_properties(self, type_name: str, archived: bool = False) -> Result:
        ot = self.objects.object_type(type_name)
        props = self.store.properties.get(ot.type_id, {}).values()
        return 200, {"results": [p.to_json() for p in props if p.archived == archived]}

    def get_property(self, type_name: str, name: str) -> Result:
        ot = self.objects.object_type(type_name)
        prop = self.store.properties.get(ot.type_id, {}).get(name)
        if prop is None or prop.archived:
            raise ApiError(404, error_body(f"Property {name} does not exist", "OBJECT_NOT_FOUND"))
        return 200, prop.to_json()

    def _property_from_input(self, ot: ObjectTypeDef, body: Any, stamp: str) -> PropertyDef:
        if not isinstance(body, dict):
            raise validation_error("Invalid input JSON: expected an object")
        missing = [
            k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)
        ]
        if missing:
            raise validation_error(
                "Invalid input JSON on line 1, column 1: Some required fields were not set: "
                f"[{', '.join(missing)}]"
            )
        name, type_, field_type = body["name"], body["type"], body["fieldType"]
        if not _NAME.match(name):
            raise validation_error(
                f"Property name {name!r} is invalid: use lowercase letters, digits and underscores, "
                "starting with a letter"
            )
        if type_ not in VALID_FIELD_TYPES:
            raise validation_error(
                f"Invalid property type {type_!r}: expected one of {sorted(VALID_FIELD_TYPES)}"
            )
        if field_type not in VALID_FIELD_TYPES[type_]:
            raise validation_error(
                f"Property {name!r} of type {type_!r} cannot have fieldType {field_type!r}: "
                f"expected one of {sorted(VALID_FIELD_TYPES[type_])}"
            )
        if body["groupName"] not in self.store.groups.get(ot.type_id, {}):
            raise validation_error(f"Property group {body['groupName']} does not exist")
        options = body.get("options") or []
        if type_ == "enumeration" and not options and field_type != "booleancheckbox":
            raise validation_error(f"Enumeration property {name!r} must have options")
        if type_ == "bool" or (
            type_ == "enumeration" and field_type == "booleancheckbox" and not options
        ):
            options = [{"label": "Yes", "value": "true"}, {"label": "No", "value": "false"}]
        return PropertyDef(
            name=name,
            label=body["label"],
            type=type_,
            field_type=field_type,
            group_name=body["groupName"],
            description=body.get("description") or "",
            options=[
                Option(o["label"], o["value"], int(o.get("displayOrder", i)), bool(o.get("hidden")))
                for i, o in enumerate(options)
            ],
            has_unique_value=bool(body.get("hasUniqueValue")),
            hubspot_defined=False,
            display_order=int(body.get("displayOrder", -1)),
            hidden=bool(body.get("hidden")),
            form_field=bool(body.get("formField")),
            created_at=stamp,
            updated_at=stamp,
        )

    def create_property(self, type_name: str, body: Any) -> Result:
        ot = self.objects.object_type(type_name)
        prop = self._property_from_input(ot, body, now_iso())
        existing = self.store.properties.get(ot.type_id, {}).get(prop.name)
        if existing is not None and not existing.archived:
            raise ApiError(
                409,
                error_body(
                    f"Property named '{prop.name}' already exists.", "OBJECT_ALREADY_EXISTS"
                ),
            )
        if prop.has_unique_value:
            unique = [
                p for p in self.store.properties.get(ot.type_id, {}).values() if p.has_unique_value
            ]
            if len(unique) >= MAX_UNIQUE_PROPERTIES:
                raise validation_error(
                    f"Cannot create property {prop.name}: {ot.name} already has the maximum of "
                    f"{MAX_UNIQUE_PROPERTIES} unique value properties",
                    subCategory="PropertyValidationError.UNIQUE_PROPERTY_LIMIT_EXCEEDED",
                )
        with self.store.transaction():
            self.store.save_property(ot.type_id, prop)
        return 201, prop.to_json()

    def batch_create_properties(self, type_name: str, body: Any) -> Result:
        """201 when every input is created, else 207 with one error per rejected input."""
        self.objects.object_type(type_name)
        started = now_iso()
        inputs = _inputs(body)
        results, errors = [], []
        for item in inputs:
            try:
                _, created = self.create_property(type_name, item)
                results.append(created)
            except ApiError as exc:
                name = item.get("name") if isinstance(item, dict) else None
                errors.append(
                    {
                        "status": "error",
                        "category": exc.body.get("category", "VALIDATION_ERROR"),
                        "message": exc.body["message"],
                        "context": {"name": [str(name)]},
                        "errors": [],
                        "links": {},
                    }
                )
        answer: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if errors:
            answer["numErrors"], answer["errors"] = len(errors), errors
        answer["startedAt"], answer["completedAt"] = started, now_iso()
        return (207 if errors else 201), answer

    def batch_read_properties(self, type_name: str, body: Any) -> Result:
        ot = self.objects.object_type(type_name)
        started = now_iso()
        archived = bool(body.get("archived")) if isinstance(body, dict) else False
        props = self.store.properties.get(ot.type_id, {})
        results, missing = [], []
        for item in _inputs(body):
            prop = props.get(str(item.get("name")))
            if prop is None or prop.archived != archived:
                missing.append(str(item.get("name")))
            else:
                results.append(prop.to_json())
        answer: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if missing:
            answer["numErrors"] = 1
            answer["errors"] = [
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": f"Properties do not exist: {', '.join(missing)}",
                    "context": {"name": missing},
                    "errors": [],
                    "links": {},
                }
            ]
        answer["startedAt"], answer["completedAt"] = started, now_iso()
        return (207 if missing else 200), answer

    def batch_archive_properties(self, type_name: str, body: Any) -> Result:
        for item in _inputs(body):
            try:
                self.archive_property(type_name, str(item.get("name")))
            except ApiError as exc:
                if exc.status != 404:
                    raise
        return 204, None

    def update_property(self, type_name: str, name: str, body: Any) -> Result:
        ot = self.objects.object_type(type_name)
        prop = self.store.properties.get(ot.type_id, {}).get(name)
        if prop is None or prop.archived:
            raise ApiError(404, error_body(f"Property {name} does not exist", "OBJECT_NOT_FOUND"))
        if prop.hubspot_defined:
            raise validation_error(f"Property {name} is HubSpot-defined and cannot be changed")
        if not isinstance(body, dict):
            raise validation_error("Invalid input JSON: expected an object")
        if "hasUniqueValue" in body and bool(body["hasUniqueValue"]) != prop.has_unique_value:
            raise validation_error("hasUniqueValue cannot be changed once the property is created")
        merged = {**prop.to_json(), **body, "name": name}
        updated = self._property_from_input(ot, merged, prop.created_at)
        updated.updated_at = now_iso()
        with self.store.transaction():
            self.store.save_property(ot.type_id, updated)
        return 200, updated.to_json()

    def archive_property(self, type_name: str, name: str) -> Result:
        ot = self.objects.object_type(type_name)
        prop = self.store.properties.get(ot.type_id, {}).get(name)
        if prop is None or prop.archived:
            raise ApiError(404, error_body(f"Property {name} does not exist", "OBJECT_NOT_FOUND"))
        if prop.hubspot_defined:
            raise validation_error(f"Property {name} is HubSpot-defined and cannot be archived")
        prop.archived = True
        with self.store.transaction():
            self.store.save_property(ot.type_id, prop)
        return 204, None

    def list_groups(self, type_name: str) -> Result:
        ot = self.objects.object_type(type_name)
        return 200, {"results": list(self.store.groups.get(ot.type_id, {}).values())}

    def get_group(self, type_name: str, name: str) -> Result:
        ot = self.objects.object_type(type_name)
        group = self.store.groups.get(ot.type_id, {}).get(name)
        if group is None:
            raise not_found()
        return 200, group

    def create_group(self, type_name: str, body: Any) -> Result:
        ot = self.objects.object_type(type_name)
        if not isinstance(body, dict) or not body.get("name") or not body.get("label"):
            raise validation_error("Some required fields were not set: [name, label]")
        if body["name"] in self.store.groups.get(ot.type_id, {}):
            raise ApiError(
                409,
                error_body(
                    f"Property group {body['name']} already exists", "OBJECT_ALREADY_EXISTS"
                ),
            )
        group = {
            "name": body["name"],
            "label": body["label"],
            "displayOrder": int(body.get("displayOrder", -1)),
            "archived": False,
        }
        with self.store.transaction():
            self.store.save_group(ot.type_id, group)
        return 201, group

    # ------------------------------------------------------------ schemas
    def schema_json(self, ot: ObjectTypeDef) -> dict[str, Any]:
        schema = dict(ot.schema or {})
        schema.pop("_properties", None)
        schema["properties"] = [p.to_json() for p in self.store.properties[ot.type_id].values()]
        schema["associations"] = [
            {
                "fromObjectTypeId": at.from_type,
                "toObjectTypeId": at.to_type,
                "name": at.label or "",
                "id": str(at.type_id),
            }
            for (f, _), ats in self.store.association_types.items()
            if f == ot.type_id
            for at in ats
        ]
        return schema

    def list_schemas(self) -> Result:
        return 200, {
            "results": [
                self.schema_json(ot) for ot in self.store.object_types.values() if ot.schema
            ]
        }

    def get_schema(self, name: str) -> Result:
        ot = self.store.resolve_type(name)
        if ot is None or ot.schema is None:
            raise ApiError(
                404, error_body(f"Unable to find object type {name}", "OBJECT_NOT_FOUND")
            )
        return 200, self.schema_json(ot)

    def create_schema(self, body: Any) -> Result:
        if not isinstance(body, dict):
            raise validation_error("Invalid input JSON: expected an object")
        missing = [k for k in ("name", "labels") if not body.get(k)]
        if missing:
            raise validation_error(f"Some required fields were not set: [{', '.join(missing)}]")
        name = body["name"]
        if not _SCHEMA_NAME.match(name):
            raise validation_error(
                f"Object name {name!r} is invalid: use letters, digits and underscores, starting "
                "with a letter"
            )
        if self.store.custom_type_named(name) or self.store.resolve_type(name):
            raise ApiError(
                409,
                error_body(f"Object type with name {name} already exists", "OBJECT_ALREADY_EXISTS"),
            )
        labels = body["labels"]
        if not isinstance(labels, dict) or not labels.get("singular") or not labels.get("plural"):
            raise validation_error("labels must have singular and plural")
        stamp = now_iso()
        type_id = f"2-{self.store.next_custom_type}"
        group = f"{name}_information"
        props = []
        for raw in body.get("properties") or []:
            raw = {"type": "string", "fieldType": "text", "groupName": group, **raw}
            raw.setdefault("label", raw.get("name"))
            props.append(raw)
        required = list(body.get("requiredProperties") or [])
        names = {p.get("name") for p in props}
        for r in required:
            if r not in names:
                raise validation_error(
                    f"Required property {r} is not one of the schema's properties"
                )
        schema = {
            "id": type_id[2:],
            "objectTypeId": type_id,
            "fullyQualifiedName": f"p{self.store.portal_id}_{name}",
            "name": name,
            "labels": {"singular": labels["singular"], "plural": labels["plural"]},
            "primaryDisplayProperty": body.get("primaryDisplayProperty"),
            "secondaryDisplayProperties": list(body.get("secondaryDisplayProperties") or []),
            "searchableProperties": list(body.get("searchableProperties") or []),
            "requiredProperties": required,
            "archived": False,
            "createdAt": stamp,
            "updatedAt": stamp,
            "_properties": [],
        }
        try:
            return self._create_schema(schema, props, body, group, stamp)
        except BaseException:
            self.store.reload()  # the transaction rolled back; forget the half-made type
            raise

    def _create_schema(
        self,
        schema: dict[str, Any],
        props: list[dict[str, Any]],
        body: dict[str, Any],
        group: str,
        stamp: str,
    ) -> Result:
        type_id = schema["objectTypeId"]
        with self.store.transaction():
            ot = self.store.save_schema(schema)
            ot.created_property = "hs_createdate"
            system = [
                PropertyDef(
                    "hs_createdate",
                    "Object create date/time",
                    "datetime",
                    "date",
                    group,
                    read_only_value=True,
                ),
                PropertyDef(
                    "hs_lastmodifieddate",
                    "Object last modified date/time",
                    "datetime",
                    "date",
                    group,
                    read_only_value=True,
                ),
                PropertyDef(
                    "hs_object_id", "Record ID", "number", "number", group, read_only_value=True
                ),
            ]
            compiled = [self.create_compiled(ot, raw, stamp) for raw in props]
            unique = [p for p in compiled if p.has_unique_value]
            if len(unique) > MAX_UNIQUE_PROPERTIES:
                raise validation_error(
                    f"At most {MAX_UNIQUE_PROPERTIES} unique value properties are allowed"
                )
            schema["_properties"] = [p.to_json() for p in system + compiled]
            self.store.save_schema(schema)
            for to in body.get("associatedObjects") or []:
                target = self.store.resolve_type(str(to))
                if target is None:
                    raise validation_error(f"Unable to infer object type from: {to}")
                fwd = self.store.next_association_type
                self.store.save_association_type(
                    AssociationType(type_id, target.type_id, fwd, "USER_DEFINED", None, fwd + 1)
                )
                self.store.save_association_type(
                    AssociationType(target.type_id, type_id, fwd + 1, "USER_DEFINED", None, fwd)
                )
        return 201, self.schema_json(self.store.object_types[type_id])

    def create_schema_association(self, name: str, body: Any) -> Result:
        """``POST /crm-object-schemas/v3/schemas/{objectType}/associations``: a new association
        definition between the custom object and another type (both directions, USER_DEFINED,
        unlabeled). The sandbox keeps one per pair: a second one for the pair is a 409."""
        ot = self.store.resolve_type(name)
        if ot is None or ot.schema is None:
            raise ApiError(
                404, error_body(f"Unable to find object type {name}", "OBJECT_NOT_FOUND")
            )
        if not isinstance(body, dict):
            raise validation_error("Invalid input JSON: expected an object")
        missing = [k for k in ("fromObjectTypeId", "toObjectTypeId") if not body.get(k)]
        if missing:
            raise validation_error(f"Some required fields were not set: [{', '.join(missing)}]")
        a = self.store.resolve_type(str(body["fromObjectTypeId"]))
        b = self.store.resolve_type(str(body["toObjectTypeId"]))
        if a is None or b is None:
            bad = body["fromObjectTypeId"] if a is None else body["toObjectTypeId"]
            raise validation_error(f"Unable to infer object type from: {bad}")
        if ot.type_id not in (a.type_id, b.type_id):
            raise validation_error(
                f"The association must start or end at {ot.type_id} (the schema's object type)"
            )
        if any(
            at.label is None for at in self.store.association_types_between(a.type_id, b.type_id)
        ):
            raise ApiError(
                409,
                error_body(
                    f"An association between {a.type_id} and {b.type_id} already exists",
                    "OBJECT_ALREADY_EXISTS",
                ),
            )
        fwd = self.store.next_association_type
        with self.store.transaction():
            self.store.save_association_type(
                AssociationType(a.type_id, b.type_id, fwd, "USER_DEFINED", None, fwd + 1)
            )
            self.store.save_association_type(
                AssociationType(b.type_id, a.type_id, fwd + 1, "USER_DEFINED", None, fwd)
            )
        stamp = now_iso()
        return 201, {
            "id": str(fwd),
            "fromObjectTypeId": a.type_id,
            "toObjectTypeId": b.type_id,
            "name": str(body.get("name") or ""),
            "createdAt": stamp,
            "updatedAt": stamp,
        }

    def create_compiled(self, ot: ObjectTypeDef, raw: dict[str, Any], stamp: str) -> PropertyDef:
        return self._property_from_input(ot, raw, stamp)

    # ------------------------------------------------------------ owners and pipelines
    def owners(self, query: dict[str, Any]) -> Result:
        owners = catalog.owners_json()
        email = query.get("email")
        if email:
            owners = [o for o in owners if o["email"].lower() == str(email).lower()]
        return 200, {"results": owners}

    def owner(self, owner_id: str) -> Result:
        for o in catalog.owners_json():
            if o["id"] == owner_id:
                return 200, o
        raise not_found()

    def pipelines(self, type_name: str) -> Result:
        ot = self.objects.object_type(type_name)
        if ot.name not in catalog.PIPELINES:
            raise validation_error(f"Object type {ot.name} does not have pipelines")
        return 200, {"results": catalog.pipelines_json(ot.name)}

    def pipeline(self, type_name: str, pipeline_id: str) -> Result:
        _, body = self.pipelines(type_name)
        for p in body["results"]:
            if p["id"] == pipeline_id:
                return 200, p
        raise not_found()

    def stages(self, type_name: str, pipeline_id: str) -> Result:
        _, p = self.pipeline(type_name, pipeline_id)
        return 200, {"results": p["stages"]}
