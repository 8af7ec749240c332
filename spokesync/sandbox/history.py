"""Property value history, as ``propertiesWithHistory`` shows it (reference §16).

Every write that changes a value appends one version ``(value, timestamp, sourceType,
sourceId, updatedByUserId)``; reads list a property's versions newest first. The versions live
only in SQLite (table ``property_history``), never in memory, so a portal of 400k records costs
no RAM for them; a read asks for the few records it returns.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

DDL = """
CREATE TABLE IF NOT EXISTS property_history (
  type_id TEXT NOT NULL, id INTEGER NOT NULL, property TEXT NOT NULL, value TEXT NOT NULL,
  timestamp TEXT NOT NULL, source_type TEXT NOT NULL, source_id TEXT, user_id INTEGER);
CREATE INDEX IF NOT EXISTS property_history_record ON property_history (type_id, id, property);
"""
TABLES = ("property_history",)

APP_ID = 1_000_001  # the sandbox's one private app: what API writes are attributed to
PERSON_USER_ID = 166_322_228  # the default "person in the CRM UI"
# sourceType values that are a person in HubSpot (reference §16); the rest are apps or HubSpot
PERSON_SOURCES = frozenset({"CRM_UI", "CRM_UI_BULK_ACTION", "MOBILE_IOS", "MOBILE_ANDROID"})
SQL_CHUNK = 500  # ids per IN (...) query


@dataclass(frozen=True, slots=True)
class WriteSource:
    """Who made a write: HubSpot's ``sourceType`` plus ``sourceId`` / ``updatedByUserId``."""

    source_type: str = "INTEGRATION"
    source_id: str | None = str(APP_ID)
    user_id: int | None = None

    @classmethod
    def person(cls, user_id: int = PERSON_USER_ID, source_type: str = "CRM_UI") -> WriteSource:
        return cls(source_type, f"userId:{user_id}", user_id)

    @classmethod
    def of(cls, source_type: str, user_id: int | None = None) -> WriteSource:
        """A source by its type: people get ``userId:N``, integrations the app id."""
        if source_type in PERSON_SOURCES:
            return cls.person(user_id or PERSON_USER_ID, source_type)
        if source_type in ("INTEGRATION", "API"):
            return cls(source_type, str(APP_ID), user_id)
        return cls(source_type, None, user_id)


API_WRITE = WriteSource()


def version_json(value: str, timestamp: str, source: WriteSource) -> dict[str, Any]:
    """One ``ValueWithTimestamp``."""
    out: dict[str, Any] = {"value": value, "timestamp": timestamp, "sourceType": source.source_type}
    if source.source_id is not None:
        out["sourceId"] = source.source_id
    if source.user_id is not None:
        out["updatedByUserId"] = source.user_id
    return out


class PropertyHistory:
    """Append and read value versions on the store's SQLite connection (inside its
    transactions: a write and its versions commit together)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        db.executescript(DDL)

    def append(
        self,
        type_id: str,
        rows: Iterable[tuple[int, str, str, str, WriteSource]],
    ) -> None:
        """``rows``: (record id, property, value, timestamp, source)."""
        self._db.executemany(
            "INSERT INTO property_history VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (type_id, rid, prop, value, stamp, src.source_type, src.source_id, src.user_id)
                for rid, prop, value, stamp, src in rows
            ],
        )

    def read(
        self, type_id: str, ids: list[int], properties: list[str]
    ) -> dict[int, dict[str, list[dict[str, Any]]]]:
        """Versions of ``properties`` for each record, newest first (ties: last written first)."""
        out: dict[int, dict[str, list[dict[str, Any]]]] = {
            rid: {p: [] for p in properties} for rid in ids
        }
        if not ids or not properties:
            return out
        prop_marks = ",".join("?" * len(properties))
        for lo in range(0, len(ids), SQL_CHUNK):
            chunk = ids[lo : lo + SQL_CHUNK]
            id_marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT id, property, value, timestamp, source_type, source_id, user_id "
                f"FROM property_history WHERE type_id = ? AND id IN ({id_marks}) "  # noqa: S608
                f"AND property IN ({prop_marks}) ORDER BY timestamp DESC, rowid DESC",
                (type_id, *chunk, *properties),
            )
            for rid, prop, value, stamp, st, sid, uid in rows:
                out[rid][prop].append(version_json(value, stamp, WriteSource(st, sid, uid)))
        return out

    def latest_sources(self, type_id: str, rid: int) -> dict[str, str]:
        """Property → sourceType of its newest version (for tests and the seed manifest)."""
        rows = self._db.execute(
            "SELECT property, source_type FROM property_history WHERE type_id = ? AND id = ? "
            "ORDER BY timestamp, rowid",
            (type_id, rid),
        )
        return dict(rows.fetchall())

    def move(self, type_id: str, old_ids: list[int], new_id: int) -> None:
        """A merge: the versions of every merged record become the survivor's."""
        marks = ",".join("?" * len(old_ids))
        self._db.execute(
            f"UPDATE property_history SET id = ? WHERE type_id = ? AND id IN ({marks})",  # noqa: S608
            (new_id, type_id, *old_ids),
        )

    def forget(self, type_id: str, rid: int) -> None:
        """GDPR delete: the record's history goes with it."""
        self._db.execute(
            "DELETE FROM property_history WHERE type_id = ? AND id = ?", (type_id, rid)
        )
