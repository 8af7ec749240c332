"""The records that pass between the diff, the push and the state store.

The diff produces :class:`RecordChange` s (only the properties that differ). The push turns
them into HubSpot batches and reports back through a :class:`PushSink` (the state store
implements it): confirmed writes update the snapshot, rejected records are dead-lettered,
every batch is logged. Keeping these types here lets the diff, the push and the store evolve
separately.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

# "adopt": a record new to spokesync that matched an existing HubSpot record (``hubspot_id``):
# written by ``batch/update`` on that id, stamping the external id (see spokesync.adoption).
ChangeKind = Literal["create", "update", "adopt"]


@dataclass(frozen=True, slots=True)
class RecordChange:
    """One record to write: only its changed properties, as canonical strings (``""`` clears)."""

    object_type: str  # HubSpot object type name as in the mapping, e.g. "companies"
    external_id: str  # value of the mapping's id property (canonical; emails lowercased)
    hubspot_id: str | None  # known HubSpot record id, None for a record not yet in the snapshot
    properties: dict[str, str]
    as_of: dt.date  # partition date the desired values were computed for
    kind: ChangeKind = "update"
    # The values are the plan's own canonical forms (the diff sets it): the store saves them as
    # they are instead of canonicalising them again (SQL canonical forms are idempotent).
    canonical: bool = False


@dataclass(frozen=True, slots=True)
class ConfirmedWrite:
    """A record HubSpot confirmed, with the values it now holds for the properties we sent."""

    object_type: str
    external_id: str
    hubspot_id: str
    properties: dict[str, str]
    as_of: dt.date
    created: bool  # HubSpot's ``new`` flag on upsert results
    correlation_id: str | None = None  # HubSpot's correlation id of the confirming batch
    event_id: str | None = None  # the canonical event that caused the write, if any
    updated_at: str | None = None  # HubSpot's ``updatedAt`` of the record after this write
    canonical: bool = False  # the values are canonical already (see RecordChange.canonical)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record HubSpot rejected (or that exhausted its retries). Never holds the token."""

    object_type: str
    external_id: str
    payload: dict[str, object]  # the input as sent: {"id", "idProperty", "properties", ...}
    category: (
        str  # HubSpot error category (VALIDATION_ERROR, …) or a client one (RETRIES_EXHAUSTED)
    )
    message: str
    correlation_id: str | None
    attempts: int
    as_of: dt.date | None = None


@dataclass(frozen=True, slots=True)
class BatchLog:
    """One HTTP call of the push, for the sync log."""

    run_id: str
    batch_seq: int
    request_id: str  # X-Request-Id we sent: "<run_id>-<batch_seq>[-<attempt>]"
    object_type: str
    endpoint: str
    status_code: int | None  # None when the transport failed
    correlation_id: str | None
    latency_ms: float
    records_sent: int
    records_ok: int
    records_failed: int
    attempt: int = 1
    error: str | None = None
    sent_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


class PushSink(Protocol):
    """Where the push reports results. Implemented by the state store."""

    def record_confirmed(self, writes: list[ConfirmedWrite], run_id: str) -> None: ...

    def record_dead_letters(self, letters: list[DeadLetter], run_id: str) -> None: ...

    def record_batch(self, entry: BatchLog) -> None: ...


class ConfirmedTap:
    """A push sink that forwards everything to ``inner`` and, after it has taken them, hands
    the confirmed writes to ``listener`` too (the link pipeline, the push's own counting)."""

    def __init__(self, inner: PushSink, listener: Callable[[list[ConfirmedWrite]], None]) -> None:
        self._inner = inner
        self._listener = listener

    def record_confirmed(self, writes: list[ConfirmedWrite], run_id: str) -> None:
        self._inner.record_confirmed(writes, run_id)
        self._listener(writes)

    def record_dead_letters(self, letters: list[DeadLetter], run_id: str) -> None:
        self._inner.record_dead_letters(letters, run_id)

    def record_batch(self, entry: BatchLog) -> None:
        self._inner.record_batch(entry)
