"""Canonical events: the audit trail of why each write happened.

A mapping's ``events:`` say which business event a change is (an invoice paid, a subscription
activated, an account flagged at renewal risk, …). When a sync writes an event's properties for
a record that matches it, the event is recorded (table ``canonical_events``) and the value
history of those writes links to its id. Task triggers record ``task_created``.

The JSON schema is versioned (``docs/events.md``): ``version`` only grows; a new *optional*
field keeps the version, renaming/removing a field or changing its meaning bumps it, and an
event once recorded is never rewritten. Event ids are deterministic — the same occurrence
always has the same id — so a rerun or a backfill records nothing twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

EventType = Literal[
    "lead_enriched",
    "account_enriched",
    "product_qualified",
    "subscription_activated",
    "invoice_paid",
    "renewal_risk_flagged",
    "task_created",
]
EVENT_TYPES: tuple[str, ...] = EventType.__args__  # type: ignore[attr-defined]


class SourceRow(BaseModel):
    """A warehouse row the event was derived from: its table and key value."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    table: str
    key: str


class CanonicalEvent(BaseModel):
    """Schema version 1 of a canonical event (see ``docs/events.md``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str
    type: EventType
    version: int = SCHEMA_VERSION
    object_type: str
    external_ids: dict[str, str] = Field(description="object type → external id")
    occurred_at: dt.datetime | None
    as_of: dt.date
    source_rows: list[SourceRow] = Field(default_factory=list)
    properties: list[str] = Field(default_factory=list, description="properties it explains")
    run_id: str
    data: dict[str, Any] = Field(default_factory=dict)


def event_id(event_type: str, object_type: str, external_id: str, occurrence: object) -> str:
    """``evt`` + 32 hex digits: stable for the same (type, record, occurrence)."""
    text = "\x1f".join([event_type, object_type, external_id, str(occurrence)])
    return "evt" + hashlib.sha256(text.encode()).hexdigest()[:32]
