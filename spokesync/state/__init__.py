"""The DuckDB state store: snapshot, sync log, dead letters, planned changes, sync runs."""

from spokesync.state.store import (
    DeadLetterRecord,
    DriftedValue,
    DriftReport,
    StateStore,
    StateStoreBusy,
)

__all__ = ["DeadLetterRecord", "DriftReport", "DriftedValue", "StateStore", "StateStoreBusy"]
