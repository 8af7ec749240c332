"""HubSpot webhook events: what one notification says, and which records it touches.

A delivery is a JSON array of up to 100 notifications. The type field is ``subscriptionType``
(some of HubSpot's pages call it ``eventType``; both are read). ``eventId`` alone is not unique
(HubSpot says so), so an event is identified by subscription, event id, time, object, property
and value together: a second notification with the same identity is a replay or a duplicate
delivery and is not taken twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

# Legacy subscription-type prefixes → the object type spokesync syncs.
OBJECT_TYPES = {
    "contact": "contacts",
    "company": "companies",
    "deal": "deals",
    "ticket": "tickets",
    "product": "products",
    "line_item": "line_items",
}
# The generic ``object.*`` subscriptions name the type by id.
OBJECT_TYPE_IDS = {"0-1": "contacts", "0-2": "companies", "0-3": "deals", "0-5": "tickets"}


class BadPayload(ValueError):
    """The body is not a HubSpot webhook delivery (a JSON array of notification objects)."""


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    event_id: str
    subscription_type: str
    object_type: str | None  # None: not a CRM record we know (e.g. conversations)
    object_ids: tuple[str, ...]  # records to re-read: the object, a merge's survivor
    occurred_at: int
    portal_id: str
    attempt: int
    property_name: str | None
    raw: dict[str, Any]

    @property
    def identity(self) -> str:
        """A stable hash of what makes this notification itself (see module doc)."""
        r = self.raw
        key = [
            r.get("subscriptionId"),
            r.get("eventId"),
            r.get("occurredAt"),
            r.get("objectId"),
            r.get("propertyName"),
            r.get("propertyValue"),
            self.subscription_type,
        ]
        return hashlib.sha256(json.dumps(key, default=str).encode()).hexdigest()


def _object_type(kind: str, raw: dict[str, Any]) -> str | None:
    prefix = kind.split(".", 1)[0]
    if prefix == "object":
        return OBJECT_TYPE_IDS.get(str(raw.get("objectTypeId", "")))
    return OBJECT_TYPES.get(prefix)


def parse_delivery(body: bytes) -> list[WebhookEvent]:
    """The notifications in one delivery; :class:`BadPayload` if it is not one."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadPayload(f"body is not JSON: {e}") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise BadPayload("body must be a JSON array of notification objects")
    events = []
    for raw in data:
        kind = str(raw.get("subscriptionType") or raw.get("eventType") or "")
        if not kind or raw.get("eventId") is None:
            raise BadPayload("a notification has no subscriptionType/eventType or eventId")
        ids = [raw.get("objectId"), raw.get("primaryObjectId"), raw.get("newObjectId")]
        events.append(
            WebhookEvent(
                event_id=str(raw["eventId"]),
                subscription_type=kind,
                object_type=_object_type(kind, raw),
                object_ids=tuple(dict.fromkeys(str(i) for i in ids if i is not None)),
                occurred_at=int(raw.get("occurredAt") or 0),
                portal_id=str(raw.get("portalId", "")),
                attempt=int(raw.get("attemptNumber") or 0),
                property_name=raw.get("propertyName"),
                raw=raw,
            )
        )
    return events
