"""The HubSpot scopes each spokesync feature needs (least privilege), and what a 403 means.

docs/security.md lists the same table; a test keeps the two in step. A 403 ``MISSING_SCOPES``
names, in ``errors[].context.requiredGranularScopes``, scopes of which *one or more* are needed;
HubSpot has been seen to name the wrong object's scope there, so the message shows both what
HubSpot named and what spokesync needs for that feature.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from spokesync.hubspot.errors import ApiError

# HubSpot's record scopes are crm.objects.<type>.read/.write, except tickets (one scope).
_TICKETS = "tickets"
OWNERS_SCOPE = "crm.objects.owners.read"
# Membership writes need both (a token with write alone gets 403 naming crm.lists.read).
LIST_SCOPES = ("crm.lists.read", "crm.lists.write")
# Objects with their own record scopes; every other object type is a custom object (2-…, or a
# mapping's custom_object name), covered by crm.objects.custom.* and crm.schemas.custom.*.
STANDARD_SCOPED = frozenset({"contacts", "companies", "deals", "line_items", "products", "quotes"})


def is_custom(object_type: str) -> bool:
    return object_type not in STANDARD_SCOPED and object_type != "tickets"


def object_scope(object_type: str, access: str) -> str:
    """The record scope for ``access`` (``read``/``write``) on ``object_type``."""
    if object_type == "tickets":
        return _TICKETS
    if is_custom(object_type):
        return f"crm.objects.custom.{access}"
    return f"crm.objects.{object_type}.{access}"


def schema_scope(object_type: str, access: str) -> str:
    """The property-definition scope (``crm.schemas.<type>.read/.write``)."""
    name = object_type if object_type in ("contacts", "companies", "deals", "tickets") else "custom"
    return f"crm.schemas.{name}.{access}"


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    what: str  # what spokesync does with it, for messages and docs

    def scopes(self, object_type: str, to_types: Iterable[str] = ()) -> list[str]:
        """The scopes this feature needs for one mapped object (and its association targets)."""
        if self.name == "ensure-properties":
            return [schema_scope(object_type, "read"), schema_scope(object_type, "write")]
        if self.name == "custom-object schema":  # Enterprise portals only
            if not is_custom(object_type):
                return []
            return [schema_scope(object_type, "read"), schema_scope(object_type, "write")]
        if self.name == "push":
            return [object_scope(object_type, "write")]
        if self.name == "refresh":
            return [object_scope(object_type, "read")]
        if self.name == "reference":  # deal and ticket pipelines, owners (not per object)
            return [object_scope("deals", "read"), object_scope("tickets", "read"), OWNERS_SCOPE]
        if self.name == "lists":  # list mappings (not per object)
            return list(LIST_SCOPES)
        if self.name == "associations":
            out = [object_scope(object_type, "write")]
            out += [object_scope(t, "write") for t in to_types]
            return list(dict.fromkeys(out))
        raise ValueError(self.name)


FEATURES: dict[str, Feature] = {
    f.name: f
    for f in (
        Feature("ensure-properties", "read and create the mapping's custom properties and groups"),
        Feature(
            "custom-object schema",
            "find or create the mapping's custom object schema and its associations",
        ),
        Feature("push", "write records (batch/upsert)"),
        Feature("refresh", "read records back into the snapshot (full refresh, drift)"),
        Feature("associations", "link records to each other (v4 associations)"),
        Feature(
            "lists",
            "find or create the list mappings' static lists and add and remove their members "
            "(lists v3)",
        ),
        Feature(
            "reference",
            "read deal and ticket pipelines and owners (the hubspot_pipeline_stages and "
            "hubspot_owners tables mapping SQL joins)",
        ),
    )
}


# A date-versioned path's version segment (``/crm/objects/2026-03/…``): year-month only, so a
# custom object's type id in a v3 path (``/crm/v3/objects/2-123/…``) is read as the object.
_VERSION = r"(?:\d{4}-\d{2}/)?"


def feature_for(method: str, path: str) -> tuple[Feature, str | None]:
    """Which feature a request belongs to, and the object type it is about (if any: a type id
    such as ``2-123`` for a custom object, as the path names it)."""
    if re.search(r"/crm/(?:v3/)?lists\b", path):
        return FEATURES["lists"], None
    if re.search(r"/crm/(?:v\d+/)?(?:pipelines|owners)\b", path):
        return FEATURES["reference"], None
    m = re.search(r"/crm-object-schemas/[^/]+/schemas(?:/([^/]+))?", path)
    if m:
        return FEATURES["custom-object schema"], m[1] or "custom"
    m = re.search(rf"/crm/(?:v\d+/)?properties/{_VERSION}([^/]+)", path)
    if m:
        return FEATURES["ensure-properties"], m[1]
    m = re.search(rf"/associations/{_VERSION}([^/]+)/", path)
    if m:
        return FEATURES["associations"], m[1]
    m = re.search(rf"/crm/(?:v\d+/)?objects/{_VERSION}([^/]+)", path)
    if m:
        if method == "GET" or path.endswith(("/batch/read", "/search")):
            return FEATURES["refresh"], m[1]
        return FEATURES["push"], m[1]
    return Feature("other", f"{method} {path}"), None


def named_scopes(error: ApiError) -> list[str]:
    """The scopes a 403 ``MISSING_SCOPES`` body names (``requiredGranularScopes``)."""
    out: list[str] = []
    for detail in error.details:
        context = detail.get("context") or {}
        values = context.get("requiredGranularScopes") or context.get("requiredScopes") or ()
        out += [str(v) for v in values]
    out += error.context.get("requiredGranularScopes", [])
    return list(dict.fromkeys(out))


def missing_scopes_message(method: str, path: str, error: ApiError) -> str:
    """One message for a 403: the feature, HubSpot's named scopes, spokesync's needed scopes."""
    feature, object_type = feature_for(method, path)
    named = named_scopes(error)
    subject = f" for {object_type}" if object_type else ""
    text = f"HubSpot refused to {feature.what}{subject} (403 {error.category or 'FORBIDDEN'})"
    if named:
        text += f": the token lacks one of the scopes HubSpot names: {', '.join(named)}"
    if feature.name in FEATURES and (object_type or feature.name in ("reference", "lists")):
        needed = feature.scopes(object_type or "")
        text += f"; spokesync's {feature.name} needs {', '.join(needed)}"
    return (
        text + ". Add the scope to the private app or service key (HubSpot → Settings → "
        "Integrations → Private apps → Scopes), then run again; docs/security.md lists every "
        f"scope per feature (correlation id {error.correlation_id})"
    )
