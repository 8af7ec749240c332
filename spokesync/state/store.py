"""The state store facade: one DuckDB file per environment (``Settings.state_db``).

Each concept lives in its own module and is reachable as an attribute:

- ``store.snapshot``      what HubSpot holds, per-record fingerprints, as-of verification
                          (:mod:`~spokesync.state.snapshot`)
- ``store.history``       value history of confirmed writes (:mod:`~spokesync.state.history`)
- ``store.dead_letters``  rejected records kept for replay (:mod:`~spokesync.state.dead_letters`)
- ``store.runs``          sync runs, planned changes, sync log (:mod:`~spokesync.state.runs`)
- ``store.associations``  confirmed links (:mod:`~spokesync.state.associations`)
- ``store.rejected``      records dropped before the push, with why (:mod:`~spokesync.state.rejected`)
- ``store.writer()``      the push's sink off the event loop, group commit
                          (:mod:`~spokesync.state.writer`)
- ``store.matches``       adoption: unowned portal records, ambiguous matches, pins
                          (:mod:`~spokesync.state.matches`)
- ``store.cursors``       refresh cursors per object (:mod:`~spokesync.state.cursors`)
- ``store.modified``      the last modification time known per HubSpot record (our confirmed
                          writes, refresh reads), so the incremental refresh need not read our
                          own writes back (:mod:`~spokesync.state.modified`)
- ``store.verified``      stretches of time a push's counts proved hold only its own writes,
                          which the next refresh skips (:mod:`~spokesync.state.verified_ranges`)
- ``store.merged``        our records merged into another of ours in HubSpot
                          (:mod:`~spokesync.state.merged`)
- ``store.lists``         static-list memberships and their diff
                          (:mod:`~spokesync.state.list_memberships`)
- ``store.completeness``  association completeness per kind of link, per run
                          (:mod:`~spokesync.state.completeness`)

The store implements :class:`spokesync.changes.PushSink`; the older flat method names delegate
to the sub-stores, so callers need not change.

DuckDB allows one writing process per file, so the store never holds a connection across
steps: use it as a context manager around one step (``with StateStore(path) as store: …``), or
call a method outside a ``with`` block and it opens and closes the file for that call. The diff
(:mod:`spokesync.diff`) attaches the file read-only only while it computes a plan, then
detaches, so a plan and the store can be used one after the other in one process.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from spokesync.changes import BatchLog, ConfirmedWrite, DeadLetter, RecordChange
from spokesync.state import schema
from spokesync.state.associations import AssociationStore, LinkRow
from spokesync.state.completeness import CompletenessStore
from spokesync.state.connection import Connection, StateStoreBusy
from spokesync.state.cursors import CursorStore
from spokesync.state.dead_letters import DeadLetterRecord, DeadLetterStore
from spokesync.state.events import EventStore
from spokesync.state.history import HistoryEntry, HistoryStore
from spokesync.state.list_memberships import ListMembershipStore
from spokesync.state.matches import MatchStore
from spokesync.state.merged import MergedStore
from spokesync.state.modified import KnownModifiedStore
from spokesync.state.rejected import RejectedRecord, RejectedStore
from spokesync.state.runs import RunStore
from spokesync.state.snapshot import DriftedValue, DriftReport, SnapshotStore
from spokesync.state.task_ledger import TaskLedger
from spokesync.state.verified_ranges import VerifiedRangeStore
from spokesync.state.writer import StateWriteError, StoreWriter

if TYPE_CHECKING:
    from spokesync.mapping.spec import MappingSpec

__all__ = [
    "DeadLetterRecord",
    "DriftReport",
    "DriftedValue",
    "HistoryEntry",
    "LinkRow",
    "RejectedRecord",
    "StateStore",
    "StateStoreBusy",
    "StateWriteError",
    "StoreWriter",
]


class StateStore:
    """The DuckDB state store; see the module docstring for the connection rules.

    ``mappings`` tell the store each object type's property types, so values HubSpot confirms
    are stored canonically and only managed properties are kept. Without them, confirmed
    values are stored trimmed, as given.
    """

    ASSOCIATION_COLUMNS = AssociationStore.ASSOCIATION_COLUMNS

    def __init__(self, path: Path | str, mappings: Iterable[MappingSpec] = ()) -> None:
        self.path = Path(path)
        self._types: dict[str, dict[str, str]] = {}
        for m in mappings:
            self.set_types(m.object_type, m.property_types)
        self.connection = Connection(self.path, schema.apply)
        self.snapshot = SnapshotStore(self.connection, self._types)
        self.history = HistoryStore(self.connection)
        self.dead_letters = DeadLetterStore(self.connection)
        self.runs = RunStore(self.connection)
        self.associations = AssociationStore(self.connection)
        self.rejected = RejectedStore(self.connection)
        self.tasks = TaskLedger(self.connection)
        self.events = EventStore(self.connection)
        self.matches = MatchStore(self.connection)
        self.merged = MergedStore(self.connection)
        self.cursors = CursorStore(self.connection)
        self.modified = KnownModifiedStore(self.connection)
        self.verified = VerifiedRangeStore(self.connection)
        self.lists = ListMembershipStore(self.connection)
        self.completeness = CompletenessStore(self.connection)

    def set_types(self, object_type: str, types: Mapping[str, str]) -> None:
        """Register the canonical form of each managed property of ``object_type``."""
        self._types[object_type] = dict(types)

    @property
    def types(self) -> Mapping[str, Mapping[str, str]]:
        """The registered canonical forms, by object type and property."""
        return self._types

    def writer(self) -> StoreWriter:
        """A :class:`~spokesync.changes.PushSink` that saves in a thread, group-committing
        several batches per transaction (``with store.writer() as sink: …``; the store must
        be open)."""
        return StoreWriter(self)

    def __enter__(self) -> StateStore:
        self.connection.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.connection.close()

    def ensure_schema(self) -> None:
        """Create the file and its tables if missing."""
        with self.connection.connection():
            pass

    # ------------------------------------------------------------------ PushSink

    def record_confirmed(self, writes: list[ConfirmedWrite], run_id: str) -> None:
        """Write-through: the snapshot takes exactly what HubSpot confirmed (origin ``pushed``,
        the write's ``as_of``), the value history takes old → new, open dead letters of those
        records are resolved — one transaction."""
        self.snapshot.record_confirmed(writes, run_id)

    def record_dead_letters(self, letters: list[DeadLetter], run_id: str) -> None:
        self.dead_letters.record(letters, run_id)

    def record_batch(self, entry: BatchLog) -> None:
        self.runs.record_batch(entry)

    # ------------------------------------------------------------------ older names (delegating)

    def rebuild_record_fingerprints(self, object_type: str | None = None) -> None:
        self.snapshot.rebuild_record_fingerprints(object_type)

    def replace_snapshot_from_hubspot(
        self,
        object_type: str,
        id_property: str,
        records: Iterable[Mapping[str, Any]],
        managed: list[str],
        types: Mapping[str, str],
        run_id: str | None = None,
        sample_limit: int = 20,
    ) -> DriftReport:
        return self.snapshot.replace_from_hubspot(
            object_type, id_property, records, managed, types, run_id, sample_limit
        )

    def snapshot_values(self, object_type: str) -> dict[str, dict[str, str | None]]:
        return self.snapshot.values(object_type)

    def hubspot_ids(self, object_type: str, external_ids: Iterable[str]) -> dict[str, str]:
        """HubSpot ids from the snapshot; a record merged into another of ours in HubSpot
        resolves to the survivor (where HubSpot moved its links)."""
        ids = list(dict.fromkeys(external_ids))
        found = self.snapshot.hubspot_ids(object_type, ids)
        if len(found) < len(ids):
            found.update(self.merged.survivors(object_type, (i for i in ids if i not in found)))
        return found

    def snapshot_count(self, object_type: str | None = None) -> int:
        return self.snapshot.count(object_type)

    def mark_verified(
        self, object_type: str, external_ids: pa.RecordBatchReader | pa.Table, as_of: dt.date
    ) -> int:
        return self.snapshot.mark_verified(object_type, external_ids, as_of)

    def missing_associations(self, links: Iterable[LinkRow] | pa.Table) -> list[LinkRow]:
        return self.associations.missing(links)

    def stale_associations(self, links: Iterable[LinkRow] | pa.Table) -> list[LinkRow]:
        return self.associations.stale(links)

    def drop_associations(self, links: Iterable[LinkRow]) -> None:
        self.associations.drop(links)

    def forget_associations(self, object_type: str) -> int:
        return self.associations.forget(object_type)

    def record_associations(self, links: Iterable[LinkRow], run_id: str) -> None:
        self.associations.record(links, run_id)

    def open_dead_letters(
        self, object_type: str | None = None, states: tuple[str, ...] = ("open",)
    ) -> list[DeadLetterRecord]:
        return self.dead_letters.letters(object_type, states)

    def mark_replayed(self, letter_ids: Iterable[int]) -> int:
        return self.dead_letters.mark_replayed(letter_ids)

    def dead_letter_changes(
        self, object_type: str, letter_ids: Iterable[int] | None = None
    ) -> list[RecordChange]:
        return self.dead_letters.changes(object_type, letter_ids)

    def start_run(
        self,
        run_id: str,
        object_type: str,
        mapping_version: str | None,
        shadow: bool,
        as_of: dt.date | None = None,
    ) -> None:
        self.runs.start(run_id, object_type, mapping_version, shadow, as_of)

    def finish_run(
        self, run_id: str, object_type: str, status: str, counts: Mapping[str, Any]
    ) -> None:
        self.runs.finish(run_id, object_type, status, counts)

    def record_planned_changes(
        self, run_id: str, object_type: str, rows: pa.RecordBatchReader | pa.Table
    ) -> int:
        return self.runs.record_planned_changes(run_id, object_type, rows)

    def planned_changes(
        self, run_id: str | None = None, object_type: str | None = None, limit: int = 100
    ) -> list[tuple[Any, ...]]:
        return self.runs.planned_changes(run_id, object_type, limit)
