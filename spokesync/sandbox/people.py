"""``POST /__sandbox/edit``: a change made by someone other than the API caller — by default a
person in the CRM UI — so tests can tell a person's edit from an integration's, as
``propertiesWithHistory`` does in HubSpot (``sourceType: CRM_UI``, ``sourceId: userId:N``)."""

from __future__ import annotations

from typing import Any

from spokesync.sandbox.errors import ApiError
from spokesync.sandbox.history import WriteSource
from spokesync.sandbox.objects import ObjectService
from spokesync.sandbox.validation import normalize_datetime


def edit(objects: ObjectService, body: Any) -> tuple[int, Any]:
    """Body: ``{"objectType": "contacts", "id": "10000001" (omit to create), "properties": {…},
    "sourceType": "CRM_UI", "userId": 166322228, "timestamp": ISO or epoch ms}``."""
    if not isinstance(body, dict) or not body.get("objectType") or not body.get("properties"):
        raise ApiError(400, {"error": "body needs objectType and properties (and id to update)"})
    source = WriteSource.of(str(body.get("sourceType") or "CRM_UI"), body.get("userId"))
    stamp = (
        normalize_datetime("timestamp", str(body["timestamp"])) if body.get("timestamp") else None
    )
    ot = objects.admin_type(str(body["objectType"]))
    with objects.store.transaction():
        rec = objects.write_as(ot.type_id, body.get("id"), body["properties"], source, stamp)
    return 200, objects.record_json(ot, rec, sorted(rec.properties))
