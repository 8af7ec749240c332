"""The DuckDB state store, split by concept behind the :class:`StateStore` facade."""

from spokesync.state.store import (
    DeadLetterRecord,
    DriftedValue,
    DriftReport,
    HistoryEntry,
    StateStore,
    StateStoreBusy,
)

__all__ = [
    "DeadLetterRecord",
    "DriftReport",
    "DriftedValue",
    "HistoryEntry",
    "StateStore",
    "StateStoreBusy",
]
