"""Ensure the custom properties a mapping writes exist in HubSpot, with the right types.

Missing properties are created only when the mapping declares them new custom properties (a
field with ``label`` and ``group``; the external-id property with ``hasUniqueValue``, which
HubSpot never lets you change later), missing property groups too. A missing property the mapping
does not declare is a typo or a property of another portal: it stops everything before anything
is created, naming the file, the field and the nearest existing names. An existing property whose HubSpot
type differs from the mapping, or an id property that is not unique, stops everything *before*
anything is created, with a message naming the property, its HubSpot type and the mapping's.
Enumeration options the mapping uses but the portal lacks are added (``add_missing_options``),
since a value outside the options would be rejected record by record.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from spokesync.hubspot.client import HubSpotClient
from spokesync.hubspot.errors import HubSpotError
from spokesync.hubspot.redact import get_logger

log = get_logger(__name__)

HUBSPOT_TYPES = frozenset({"string", "number", "date", "datetime", "bool", "enumeration"})
BUILTIN_ID_PROPERTIES = {"contacts": "email"}
DEFAULT_GROUPS = {
    "contacts": "contactinformation",
    "companies": "companyinformation",
    "deals": "dealinformation",
    "tickets": "ticketinformation",
}
BOOL_OPTIONS = (("Yes", "true"), ("No", "false"))


class PropertyMismatchError(HubSpotError):
    """Existing HubSpot properties disagree with the mapping; nothing was created."""


class UnknownPropertyError(PropertyMismatchError):
    """A mapped property does not exist in HubSpot and the mapping does not declare it new."""


@dataclass(frozen=True, slots=True)
class PropertySpec:
    """What a mapping needs of one HubSpot property (HubSpot's own ``type``/``fieldType``)."""

    name: str
    type: str  # string | number | date | datetime | bool | enumeration
    field_type: str
    options: tuple[str, ...] = ()
    label: str | None = None
    group: str | None = None
    unique: bool = False  # the external-id property: created with hasUniqueValue
    description: str | None = None
    create: bool = True  # may be created when missing (a declared new custom property)
    origin: str | None = None  # where the mapping names it, e.g. "mappings/deals.yaml: fields[3]"

    def __post_init__(self) -> None:
        if self.type not in HUBSPOT_TYPES:
            raise ValueError(
                f"property {self.name!r}: type {self.type!r} is not a HubSpot property type"
                f" ({', '.join(sorted(HUBSPOT_TYPES))})"
            )


@dataclass
class EnsureReport:
    object_type: str
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    groups_created: list[str] = field(default_factory=list)
    options_added: dict[str, list[str]] = field(default_factory=dict)
    dry_run: bool = False

    def summary(self) -> str:
        verb = "would create" if self.dry_run else "created"
        parts = [
            f"{self.object_type}: {verb} {len(self.created)} ({', '.join(self.created) or '-'})"
        ]
        parts.append(f"{len(self.existing)} already present")
        if self.groups_created:
            parts.append(f"groups {verb}: {', '.join(self.groups_created)}")
        if self.options_added:
            added = "; ".join(f"{k}: {', '.join(v)}" for k, v in self.options_added.items())
            parts.append(f"options {'to add' if self.dry_run else 'added'}: {added}")
        return ", ".join(parts)


def specs_from_mapping(mapping: Any) -> list[PropertySpec]:
    """The properties a :class:`spokesync.mapping.spec.MappingSpec` needs in HubSpot."""
    specs: list[PropertySpec] = []
    builtin_id = BUILTIN_ID_PROPERTIES.get(mapping.object_type)
    if mapping.id.property != builtin_id:
        specs.append(
            PropertySpec(
                name=mapping.id.property,
                type="string",
                field_type="text",
                label=mapping.id.label or mapping.id.property,
                group="spokesync",
                unique=True,
                description="External id from the warehouse (spokesync upserts by it)",
                origin=f"{mapping.path}: id.property",
            )
        )
    for i, f in enumerate(mapping.fields):
        specs.append(
            PropertySpec(
                name=f.property,
                type=f.hubspot_type,
                field_type=f.hubspot_field_type,
                options=tuple(f.options or ()),
                label=f.label,
                group=f.group,
                description=f.description,
                create=f.declares_new_property,
                origin=f"{mapping.path}: fields[{i}] ({f.property})",
            )
        )
    return specs


def nearest_names(name: str, existing: dict[str, dict[str, Any]], n: int = 3) -> list[str]:
    """The existing property names closest to ``name`` (by name, then by label)."""
    names = list(existing)
    close = difflib.get_close_matches(name, names, n=n, cutoff=0.6)
    if len(close) < n:
        labels = {str(p.get("label") or "").lower(): k for k, p in existing.items()}
        wanted = name.replace("_", " ").lower()
        for label in difflib.get_close_matches(wanted, list(labels), n=n, cutoff=0.7):
            if labels[label] not in close:
                close.append(labels[label])
    return close[:n]


def _unknown_message(spec: PropertySpec, object_type: str, existing: dict[str, Any]) -> str:
    where = spec.origin or f"{object_type}.{spec.name}"
    near = nearest_names(spec.name, existing)
    hint = (
        "did you mean " + " or ".join(f"`{n}`" for n in near) + "?"
        if near
        else "no existing property has a similar name"
    )
    return (
        f"{where}: HubSpot {object_type} have no property `{spec.name}` — {hint} "
        "(to create it as a new custom property, give the field a `label` and a `group`)"
    )


async def existing_properties(
    client: HubSpotClient, object_type: str, *, run_id: str = "ensure-properties"
) -> dict[str, dict[str, Any]]:
    """HubSpot's property definitions of ``object_type`` by name (one call)."""
    return {
        p["name"]: p
        for p in await client.list_properties(object_type, request_id=f"{run_id}-props")
        if "name" in p
    }


def _definition(spec: PropertySpec, object_type: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": spec.name,
        "label": spec.label or spec.name.replace("_", " ").capitalize(),
        "type": spec.type,
        "fieldType": spec.field_type,
        "groupName": spec.group or DEFAULT_GROUPS.get(object_type, "spokesync"),
    }
    if spec.description:
        body["description"] = spec.description
    if spec.unique:
        body["hasUniqueValue"] = True
    pairs = BOOL_OPTIONS if spec.type == "bool" else tuple((o, o) for o in spec.options)
    if pairs:
        body["options"] = [
            {"label": label, "value": value, "hidden": False, "displayOrder": i}
            for i, (label, value) in enumerate(pairs)
        ]
    return body


async def ensure_properties(
    client: HubSpotClient,
    specs: list[PropertySpec],
    object_type: str,
    *,
    run_id: str = "ensure-properties",
    dry_run: bool = False,
    add_missing_options: bool = True,
    existing: dict[str, dict[str, Any]] | None = None,
) -> EnsureReport:
    """Create what is missing; raise :class:`PropertyMismatchError` on any incompatible property
    (:class:`UnknownPropertyError` for a missing property the mapping does not declare new).

    ``existing`` (from :func:`existing_properties`) saves the read when the caller has it."""
    report = EnsureReport(object_type, dry_run=dry_run)
    if existing is None:
        existing = await existing_properties(client, object_type, run_id=run_id)
    problems: list[str] = []
    unknown: list[str] = []
    missing: list[PropertySpec] = []
    options_to_add: dict[str, list[str]] = {}
    for spec in specs:
        current = existing.get(spec.name)
        if current is None:
            if spec.create:
                missing.append(spec)
            else:
                unknown.append(_unknown_message(spec, object_type, existing))
            continue
        report.existing.append(spec.name)
        hubspot_type = current.get("type")
        if hubspot_type != spec.type:
            problems.append(
                f"{object_type}.{spec.name}: HubSpot has type {hubspot_type!r}"
                f" (fieldType {current.get('fieldType')!r}) but the mapping says {spec.type!r}"
            )
            continue
        if spec.unique and not current.get("hasUniqueValue"):
            problems.append(
                f"{object_type}.{spec.name}: the id property exists in HubSpot without"
                " hasUniqueValue, so upserts by it are impossible; HubSpot cannot change this"
                " later — use a new property name for the external id"
            )
        if spec.type == "enumeration" and spec.options:
            present = {o.get("value") for o in current.get("options") or ()}
            absent = [o for o in spec.options if o not in present]
            fixed = current.get("hubspotDefined") or (
                current.get("modificationMetadata") or {}
            ).get("readOnlyDefinition")
            if not absent or current.get("externalOptions") or (fixed and not present):
                # Options that live elsewhere (deal/ticket pipelines and their stages) are
                # not listed on the property; HubSpot validates the values on write.
                pass
            elif fixed:
                problems.append(
                    f"{object_type}.{spec.name}: HubSpot-defined property has no option(s)"
                    f" {absent} and its options cannot be changed; map to HubSpot's values"
                )
            else:
                options_to_add[spec.name] = absent
    if unknown:
        raise UnknownPropertyError(
            "mapped properties do not exist in HubSpot (nothing was changed):\n  "
            + "\n  ".join(unknown + problems)
        )
    if problems:
        raise PropertyMismatchError(
            "HubSpot properties do not match the mapping (nothing was changed):\n  "
            + "\n  ".join(problems)
        )

    groups_needed = {spec.group or DEFAULT_GROUPS.get(object_type, "spokesync") for spec in missing}
    if groups_needed:
        groups = await client.list_property_groups(object_type, request_id=f"{run_id}-groups")
        have = {g.get("name") for g in groups}
        for n, group in enumerate(sorted(groups_needed - have), start=1):
            report.groups_created.append(group)
            if not dry_run:
                label = "spokesync" if group == "spokesync" else group.replace("_", " ").title()
                await client.create_property_group(
                    object_type, group, label, request_id=f"{run_id}-group{n}"
                )
    for n, spec in enumerate(missing, start=1):
        report.created.append(spec.name)
        if not dry_run:
            await client.create_property(
                object_type, _definition(spec, object_type), request_id=f"{run_id}-create{n}"
            )
            log.info("created %s.%s (%s/%s)", object_type, spec.name, spec.type, spec.field_type)
    if add_missing_options:
        for n, (name, absent) in enumerate(options_to_add.items(), start=1):
            report.options_added[name] = absent
            if dry_run:
                continue
            current_options = list(existing[name].get("options") or ())
            start = len(current_options)
            current_options += [
                {"label": o, "value": o, "hidden": False, "displayOrder": start + i}
                for i, o in enumerate(absent)
            ]
            await client.update_property(
                object_type, name, {"options": current_options}, request_id=f"{run_id}-opts{n}"
            )
    return report
