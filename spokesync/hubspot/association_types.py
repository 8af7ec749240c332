"""Association type ids, read from HubSpot instead of typed into mappings.

A mapping's association names the pair and, optionally, a label. Before pushing, the sync
reads the pair's types (``GET /crm/associations/{version}/{from}/{to}/labels``): no label means
the pair's unlabeled HUBSPOT_DEFINED type; a label is matched case-insensitively; a missing
USER_DEFINED label (e.g. "Billing contact") is created through the labels API (``POST …/labels``,
idempotent: read first, create only if absent). Labels' type ids are per portal.
"""

from __future__ import annotations

from typing import Any

from spokesync.hubspot.client import HubSpotClient, _raise_unless_ok
from spokesync.hubspot.errors import HubSpotConfigError, HubSpotError
from spokesync.mapping.spec import AssociationSpec, MappingSpec


class AssociationTypeError(HubSpotConfigError):
    """A mapping names an association HubSpot does not have (and cannot be created)."""


CONFIRM_ATTEMPTS = 3  # reads/creates whose 2xx answer carries no ``results``


async def list_association_types(
    client: HubSpotClient, from_type: str, to_type: str, *, request_id: str
) -> list[dict[str, Any]]:
    """The pair's association types. A 2xx without ``results`` confirms nothing (it is not an
    empty list): it is read again, and never taken to mean the pair has no types."""
    for attempt in range(1, CONFIRM_ATTEMPTS + 1):
        rid = request_id if attempt == 1 else f"{request_id}-r{attempt}"
        response = await client.request(
            "GET", client.associations_path(from_type, to_type, "/labels"), request_id=rid
        )
        body = _raise_unless_ok(response).body
        if isinstance(body, dict) and isinstance(body.get("results"), list):
            return list(body["results"])
    raise HubSpotError(
        f"HubSpot answered 2xx without results to reading the {from_type} → {to_type} "
        f"association labels {CONFIRM_ATTEMPTS} times; check https://status.hubspot.com and "
        "run again"
    )


async def create_label(
    client: HubSpotClient, spec_from: str, spec: AssociationSpec, *, request_id: str
) -> int:
    """Create a USER_DEFINED label and return its type id. A create whose answer was lost (the
    client's retry then meets 409 "already exists") or a 2xx without the type id is confirmed
    by reading the labels back."""
    for attempt in range(1, CONFIRM_ATTEMPTS + 1):
        rid = request_id if attempt == 1 else f"{request_id}-s{attempt}"
        response = await client.request(
            "POST",
            client.associations_path(spec_from, spec.to_object_type, "/labels"),
            json={"label": spec.label, "name": spec.label_name},
            request_id=rid,
            write=True,
        )
        if response.status_code != 409:
            results = (_raise_unless_ok(response).body or {}).get("results") or ()
            for r in results:
                if (r.get("label") or "").lower() == (spec.label or "").lower():
                    return int(r["typeId"])
            if results:
                return int(results[0]["typeId"])
        types = await list_association_types(
            client, spec_from, spec.to_object_type, request_id=f"{rid}-read"
        )
        type_id = pick_type(spec, types)
        if type_id is not None:
            return type_id
    raise AssociationTypeError(
        f"HubSpot answered creating label {spec.label!r} ({spec_from} → {spec.to_object_type}) "
        f"{CONFIRM_ATTEMPTS} times without it existing afterwards; run again"
    )


def pick(spec: AssociationSpec, types: list[dict[str, Any]]) -> tuple[int, str] | None:
    """(type id, category) of ``spec`` among the pair's types (None: absent).

    The unlabeled type of a pair with a custom object is not HUBSPOT_DEFINED: HubSpot makes it
    when the object's schema is associated (USER_DEFINED, no label). An unlabeled association
    therefore takes the pair's unlabeled type of the mapping's category, else the pair's
    unlabeled type HubSpot has (the lowest id, should there be several), with its category."""
    unlabeled = [t for t in types if t.get("label") is None]
    for t in types:
        if t.get("category") != spec.category:
            continue
        label = t.get("label")
        if spec.label is None and label is None:
            return int(t["typeId"]), str(t["category"])
        if spec.label is not None and (label or "").lower() == spec.label.lower():
            return int(t["typeId"]), str(t["category"])
    if spec.label is None and unlabeled:
        first = min(unlabeled, key=lambda t: int(t["typeId"]))
        return int(first["typeId"]), str(first["category"])
    return None


def pick_type(spec: AssociationSpec, types: list[dict[str, Any]]) -> int | None:
    """The type id of ``spec`` among the pair's types (None: absent)."""
    found = pick(spec, types)
    return None if found is None else found[0]


async def resolve_association_types(
    client: HubSpotClient, mapping: MappingSpec, run_id: str
) -> MappingSpec:
    """``mapping`` with every association's type id filled from HubSpot."""
    if all(a.association_type_id is not None for a in mapping.associations):
        return mapping
    resolved: list[AssociationSpec] = []
    cache: dict[str, list[dict[str, Any]]] = {}
    for n, spec in enumerate(mapping.associations, start=1):
        if spec.association_type_id is not None:
            resolved.append(spec)
            continue
        if spec.to_object_type not in cache:
            cache[spec.to_object_type] = await list_association_types(
                client,
                mapping.object_type,
                spec.to_object_type,
                request_id=f"{run_id}-assoc-types-{n}",
            )
        found = pick(spec, cache[spec.to_object_type])
        type_id, category = found if found is not None else (None, spec.category)
        if type_id is None and spec.category == "USER_DEFINED" and spec.label:
            type_id = await create_label(
                client, mapping.object_type, spec, request_id=f"{run_id}-assoc-label-{n}"
            )
            cache.pop(spec.to_object_type)
        if type_id is None:
            what = f"label {spec.label!r}" if spec.label else "an unlabeled default type"
            raise AssociationTypeError(
                f"{mapping.path}: associations[{n - 1}]: HubSpot has no {spec.category} "
                f"association {mapping.object_type} → {spec.to_object_type} with {what}"
            )
        resolved.append(
            spec.model_copy(update={"association_type_id": type_id, "category": category})
        )
    return mapping.model_copy(update={"associations": resolved})
