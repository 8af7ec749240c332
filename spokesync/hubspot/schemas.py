"""Custom object schemas: a mapping's custom object exists in HubSpot, found or created once.

A mapping with a ``custom_object:`` block names the object (``name``, which HubSpot never lets
anyone change), its labels, display, searchable and required properties and the objects it is
associated with. Before anything else touches the object, :func:`ensure_custom_object`:

1. reads the portal's schemas (``GET /crm-object-schemas/v3/schemas``) and reuses the one with
   that name — a rerun, or another environment that created it, creates nothing;
2. creates it when absent (``POST …/schemas`` with the external-id property, unique, and the
   properties the schema itself must name). A create whose answer was lost is retried by the
   client and meets 409, or fails past its retries: either way the schemas are read again and
   the one found is the answer, so one object is created however the answer went;
3. adds the associations to the mapping's ``associated_objects`` the schema lacks
   (``POST …/schemas/{objectTypeId}/associations``, read back the same way);
4. registers the ``objectTypeId`` (``2-…``) with the client: every later path (records,
   properties, associations, labels) addresses the object by it. The association *type* ids
   are then read from the labels API like any other pair's, never typed into a mapping.

Missing properties are added afterwards by ensure-properties, as for standard objects. Custom
objects need HubSpot Enterprise and the ``crm.schemas.custom.write`` scope (``.read`` to only
find the schema); see ``docs/security.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spokesync.hubspot.client import HubSpotClient, _raise_unless_ok
from spokesync.hubspot.errors import HubSpotConfigError, HubSpotError, RetriesExhausted
from spokesync.hubspot.properties import _definition, specs_from_mapping
from spokesync.hubspot.redact import get_logger
from spokesync.mapping.spec import MappingSpec

log = get_logger(__name__)

CONFIRM_ATTEMPTS = 3
# HubSpot's object type ids of the standard objects a custom object can be associated with.
STANDARD_TYPE_IDS = {
    "contacts": "0-1",
    "companies": "0-2",
    "deals": "0-3",
    "tickets": "0-5",
    "products": "0-7",
    "line_items": "0-8",
}


class CustomObjectError(HubSpotConfigError):
    """The portal's schema cannot serve the mapping (a required property HubSpot lacks, …)."""


@dataclass
class SchemaReport:
    object_type: str  # the mapping's name for it
    object_type_id: str | None = None  # HubSpot's 2-…; None: absent (dry run)
    fully_qualified_name: str | None = None
    created: bool = False
    associations_created: list[str] = field(default_factory=list)
    dry_run: bool = False

    def summary(self) -> str:
        if self.object_type_id is None:
            return f"custom object {self.object_type}: absent, would create it (dry run)"
        verb = "would add" if self.dry_run else "added"
        text = f"custom object {self.object_type} = {self.object_type_id} "
        text += "(created)" if self.created else "(found)"
        if self.associations_created:
            text += f", associations {verb}: {', '.join(self.associations_created)}"
        return text


def schemas_path(client: HubSpotClient, suffix: str = "") -> str:
    """``/crm-object-schemas/2026-03/schemas{suffix}`` (``/crm-object-schemas/v3/…`` for v3)."""
    version = "v3" if client.api_version in ("v3", "v4") else client.api_version
    return f"/crm-object-schemas/{version}/schemas{suffix}"


def _type_id(object_type: str) -> str:
    return STANDARD_TYPE_IDS.get(object_type, object_type)


def schema_body(mapping: MappingSpec) -> dict[str, Any]:
    """The ``POST …/schemas`` body for the mapping's custom object: its name and labels, the
    external id (``hasUniqueValue``) and every property the schema must itself name (primary,
    secondary, searchable, required)."""
    co = mapping.custom_object
    assert co is not None
    specs = {s.name: s for s in specs_from_mapping(mapping)}
    named = [mapping.id.property, *co.schema_properties]
    properties = []
    for name in dict.fromkeys(named):
        spec = specs[name]
        definition = _definition(spec, mapping.object_type)
        definition.pop("groupName", None)  # the object's own default group
        properties.append(definition)
    return {
        "name": co.name,
        "labels": {"singular": co.labels.singular, "plural": co.labels.plural},
        "primaryDisplayProperty": co.primary_display_property,
        "secondaryDisplayProperties": list(co.secondary_display_properties),
        "searchableProperties": list(co.searchable_properties),
        "requiredProperties": list(co.required_properties),
        "properties": properties,
        "associatedObjects": [_type_id(t) for t in co.associated_objects],
    }


async def list_schemas(client: HubSpotClient, *, request_id: str) -> list[dict[str, Any]]:
    """Every custom object schema of the portal. A 2xx without ``results`` is read again."""
    for attempt in range(1, CONFIRM_ATTEMPTS + 1):
        rid = request_id if attempt == 1 else f"{request_id}-r{attempt}"
        response = await client.request("GET", schemas_path(client), request_id=rid)
        body = _raise_unless_ok(response).body
        if isinstance(body, dict) and isinstance(body.get("results"), list):
            return [s for s in body["results"] if isinstance(s, dict)]
    raise HubSpotError(
        f"HubSpot answered 2xx without results to reading the custom object schemas "
        f"{CONFIRM_ATTEMPTS} times; run again"
    )


def find_schema(schemas: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    """The schema named ``name`` (HubSpot's names are case-insensitive), archived ones left out."""
    for s in schemas:
        if str(s.get("name", "")).lower() == name.lower() and not s.get("archived"):
            return s
    return None


def _associated(schema: dict[str, Any], to_type_id: str) -> bool:
    own = schema.get("objectTypeId")
    for a in schema.get("associations") or ():
        ends = {a.get("fromObjectTypeId"), a.get("toObjectTypeId")}
        if ends == {own, to_type_id} or (own == to_type_id and ends == {own}):
            return True
    return False


async def _create(client: HubSpotClient, mapping: MappingSpec, run_id: str) -> dict[str, Any]:
    """Create the schema once: after a 409, a lost answer or a 2xx without the schema, the
    schemas are read again and the one found is the answer."""
    co = mapping.custom_object
    assert co is not None
    body = schema_body(mapping)
    for send in range(1, CONFIRM_ATTEMPTS + 1):
        rid = f"{run_id}-schema-create" + ("" if send == 1 else f"-s{send}")
        try:
            response = await client.request(
                "POST", schemas_path(client), json=body, request_id=rid, write=True
            )
        except RetriesExhausted as exc:  # maybe applied: the read below tells
            log.warning("%s: creating schema %s: %s; reading the schemas", rid, co.name, exc)
            response = None
        if response is not None and response.ok:
            created = response.body if isinstance(response.body, dict) else {}
            if created.get("objectTypeId"):
                return created
        elif response is not None and response.status_code != 409:
            _raise_unless_ok(response)
        found = find_schema(await list_schemas(client, request_id=f"{rid}-read"), co.name)
        if found is not None:
            return found
    raise HubSpotError(
        f"{mapping.path}: HubSpot answered creating custom object {co.name!r} "
        f"{CONFIRM_ATTEMPTS} times without it existing afterwards; run again"
    )


async def _add_association(
    client: HubSpotClient, mapping: MappingSpec, schema: dict[str, Any], target: str, run_id: str
) -> None:
    """``POST …/schemas/{objectTypeId}/associations``, confirmed by reading the schema back."""
    co = mapping.custom_object
    assert co is not None
    own, to = schema["objectTypeId"], _type_id(target)
    body = {"fromObjectTypeId": own, "toObjectTypeId": to, "name": f"{co.name}_to_{target}"}
    for send in range(1, CONFIRM_ATTEMPTS + 1):
        rid = f"{run_id}-schema-assoc-{target}" + ("" if send == 1 else f"-s{send}")
        try:
            response = await client.request(
                "POST",
                schemas_path(client, f"/{own}/associations"),
                json=body,
                request_id=rid,
                write=True,
            )
            if not response.ok and response.status_code != 409:
                _raise_unless_ok(response)
        except RetriesExhausted as exc:
            log.warning("%s: associating %s with %s: %s", rid, co.name, target, exc)
        current = find_schema(await list_schemas(client, request_id=f"{rid}-read"), co.name)
        if current is not None and _associated(current, to):
            return
    raise HubSpotError(
        f"{mapping.path}: HubSpot did not keep the association of {co.name!r} with {target} "
        f"after {CONFIRM_ATTEMPTS} tries; run again"
    )


async def ensure_custom_object(
    client: HubSpotClient, mapping: MappingSpec, run_id: str, *, dry_run: bool = False
) -> SchemaReport:
    """Find (or, unless ``dry_run``, create) the mapping's custom object and its associations,
    and register its ``objectTypeId`` with ``client``. A no-op for a standard object."""
    co = mapping.custom_object
    report = SchemaReport(mapping.object_type, dry_run=dry_run)
    if co is None:
        return report
    schema = find_schema(await list_schemas(client, request_id=f"{run_id}-schemas"), co.name)
    if schema is None and dry_run:
        return report
    if schema is None:
        schema = await _create(client, mapping, run_id)
        report.created = True
        log.info("created custom object %s (%s)", co.name, schema.get("objectTypeId"))
    report.object_type_id = str(schema["objectTypeId"])
    report.fully_qualified_name = schema.get("fullyQualifiedName")
    client.object_type_ids[mapping.object_type] = report.object_type_id
    for target in co.associated_objects:
        if _associated(schema, _type_id(target)):
            continue
        report.associations_created.append(target)
        if not dry_run:
            await _add_association(client, mapping, schema, target, run_id)
    return report


async def resolve_custom_objects(
    client: HubSpotClient, mappings: list[MappingSpec], run_id: str
) -> None:
    """Register the ``objectTypeId`` of every custom object among ``mappings`` that HubSpot has
    (one read; nothing is created), for steps that only read or refresh."""
    custom = [m for m in mappings if m.custom_object is not None]
    if not custom or all(m.object_type in client.object_type_ids for m in custom):
        return
    schemas = await list_schemas(client, request_id=f"{run_id}-schemas")
    for m in custom:
        assert m.custom_object is not None
        found = find_schema(schemas, m.custom_object.name)
        if found is not None:
            client.object_type_ids[m.object_type] = str(found["objectTypeId"])
