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
from spokesync.progress import Progress

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
CONFIRM_ATTEMPTS = 3  # sends of a create whose 2xx answer is not borne out by a read-back


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


def _check(
    spec: PropertySpec, current: dict[str, Any], object_type: str
) -> tuple[list[str], list[str]]:
    """How an existing HubSpot property disagrees with the mapping: (problems, options to add)."""
    hubspot_type = current.get("type")
    if hubspot_type != spec.type:
        return [
            f"{object_type}.{spec.name}: HubSpot has type {hubspot_type!r}"
            f" (fieldType {current.get('fieldType')!r}) but the mapping says {spec.type!r}"
        ], []
    problems: list[str] = []
    if spec.unique and not current.get("hasUniqueValue"):
        problems.append(
            f"{object_type}.{spec.name}: the id property exists in HubSpot without"
            " hasUniqueValue, so upserts by it are impossible; HubSpot cannot change this"
            " later — use a new property name for the external id"
        )
    absent: list[str] = []
    if spec.type == "enumeration" and spec.options:
        present = {o.get("value") for o in current.get("options") or ()}
        missing = [o for o in spec.options if o not in present]
        fixed = current.get("hubspotDefined") or (current.get("modificationMetadata") or {}).get(
            "readOnlyDefinition"
        )
        if not missing or current.get("externalOptions") or (fixed and not present):
            # Options that live elsewhere (deal/ticket pipelines and their stages) are
            # not listed on the property; HubSpot validates the values on write.
            pass
        elif fixed:
            problems.append(
                f"{object_type}.{spec.name}: HubSpot-defined property has no option(s)"
                f" {missing} and its options cannot be changed; map to HubSpot's values"
            )
        else:
            absent = missing
    return problems, absent


def _already_exists(exc: HubSpotError) -> bool:
    """HubSpot's 409 for a name that is taken (``OBJECT_ALREADY_EXISTS``, or ``CONFLICT``)."""
    err = exc.error
    return (
        err is not None
        and err.status_code == 409
        and err.category in ("OBJECT_ALREADY_EXISTS", "CONFLICT", None)
    )


class NotConfirmed(HubSpotError):
    """HubSpot answered 2xx to a create or update, but reading back shows it did not happen."""


async def _create_property(
    client: HubSpotClient,
    spec: PropertySpec,
    object_type: str,
    request_id: str,
    attempts: int = CONFIRM_ATTEMPTS,
) -> dict[str, Any]:
    """Create one property and return HubSpot's definition of it, confirmed.

    A create whose answer was lost is retried by the client and then meets HubSpot's 409
    ``OBJECT_ALREADY_EXISTS``; a 2xx may carry no property at all. In both cases the property is
    read back: if it exists it is the answer (the caller checks it matches the mapping); if it
    does not, the create is sent again."""
    for send in range(1, attempts + 1):
        rid = request_id if send == 1 else f"{request_id}-s{send}"
        try:
            body = await client.create_property(
                object_type, _definition(spec, object_type), request_id=rid
            )
        except HubSpotError as exc:
            if not _already_exists(exc):
                raise
            log.info(
                "%s.%s: HubSpot says it exists already; reading it back", object_type, spec.name
            )
            body = {}
        if body.get("name") == spec.name and body.get("type"):
            return body
        current = await client.get_property(object_type, spec.name, request_id=f"{rid}-read")
        if current is not None:
            return current
    raise NotConfirmed(
        f"HubSpot answered 2xx to creating {object_type}.{spec.name} {attempts} times, but the "
        "property does not exist; check HubSpot's status page and run again"
    )


async def _create_group(
    client: HubSpotClient,
    object_type: str,
    group: str,
    label: str,
    request_id: str,
    attempts: int = CONFIRM_ATTEMPTS,
) -> None:
    """Create one property group, confirmed the same way as :func:`_create_property`."""
    for send in range(1, attempts + 1):
        rid = request_id if send == 1 else f"{request_id}-s{send}"
        try:
            body = await client.create_property_group(object_type, group, label, request_id=rid)
        except HubSpotError as exc:
            if not _already_exists(exc):
                raise
            body = {}
        if body.get("name") == group:
            return
        if await client.get_property_group(object_type, group, request_id=f"{rid}-read"):
            return
    raise NotConfirmed(
        f"HubSpot answered 2xx to creating property group {object_type}.{group} {attempts} "
        "times, but the group does not exist; check HubSpot's status page and run again"
    )


async def _add_options(
    client: HubSpotClient,
    object_type: str,
    name: str,
    current: dict[str, Any],
    absent: list[str],
    request_id: str,
    attempts: int = CONFIRM_ATTEMPTS,
) -> None:
    """PATCH the complete options list (idempotent), confirmed by the answer or a read-back."""
    options = list(current.get("options") or ())
    start = len(options)
    options += [
        {"label": o, "value": o, "hidden": False, "displayOrder": start + i}
        for i, o in enumerate(absent)
    ]
    for send in range(1, attempts + 1):
        rid = request_id if send == 1 else f"{request_id}-s{send}"
        body = await client.update_property(object_type, name, {"options": options}, request_id=rid)
        if not body.get("options"):
            body = await client.get_property(object_type, name, request_id=f"{rid}-read") or {}
        present = {o.get("value") for o in body.get("options") or ()}
        if all(o in present for o in absent):
            return
    raise NotConfirmed(
        f"HubSpot answered 2xx to adding options {absent} to {object_type}.{name} {attempts} "
        "times, but they are not there; check HubSpot's status page and run again"
    )


async def ensure_properties(
    client: HubSpotClient,
    specs: list[PropertySpec],
    object_type: str,
    *,
    run_id: str = "ensure-properties",
    dry_run: bool = False,
    add_missing_options: bool = True,
    existing: dict[str, dict[str, Any]] | None = None,
    progress: Progress | None = None,
) -> EnsureReport:
    """Create what is missing (``progress`` advances per property created); raise :class:`PropertyMismatchError` on any incompatible property
    (:class:`UnknownPropertyError` for a missing property the mapping does not declare new).

    ``existing`` (from :func:`existing_properties`) saves the read when the caller has it.
    Every write is confirmed (see :func:`_create_property`): a lost answer, a 409 for a
    property our own retried request created, or a 2xx that did nothing never stops the sync
    nor leaves a property silently missing."""
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
        found, absent = _check(spec, current, object_type)
        problems += found
        if absent:
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
                await _create_group(client, object_type, group, label, f"{run_id}-group{n}")
    if progress is not None and not dry_run:
        progress.expect(len(missing))
    for n, spec in enumerate(missing, start=1):
        report.created.append(spec.name)
        if dry_run:
            continue
        created = await _create_property(client, spec, object_type, f"{run_id}-create{n}")
        if progress is not None:
            progress.advance(1)
        found, absent = _check(spec, created, object_type)
        if found:  # someone else created it between our read and our create
            raise PropertyMismatchError(
                "HubSpot properties do not match the mapping:\n  " + "\n  ".join(found)
            )
        existing[spec.name] = created
        if absent:
            options_to_add[spec.name] = absent
        log.info("created %s.%s (%s/%s)", object_type, spec.name, spec.type, spec.field_type)
    if add_missing_options:
        for n, (name, absent) in enumerate(options_to_add.items(), start=1):
            report.options_added[name] = absent
            if not dry_run:
                await _add_options(
                    client, object_type, name, existing[name], absent, f"{run_id}-opts{n}"
                )
    return report
