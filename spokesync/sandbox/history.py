"""Property value history, as ``propertiesWithHistory`` shows it (reference §16).

Every write that changes a value appends one version ``(value, timestamp, sourceType,
sourceId, updatedByUserId)``; reads list a property's versions newest first. The versions live
only in SQLite, never in memory, so a portal of 400k records costs no RAM for them; a read asks
for the few records it returns.

Stored compactly: one row per record per write (table ``property_versions``: who, when, and a
JSON object of the values that write changed), not one row per value. A 100-record create of 26
properties is 100 rows instead of 2,600, which was most of a batch write's cost; what a read
returns is the same, version for version. A file from before keeps its ``property_history``
rows: they are moved into the compact table when the file is opened.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

DDL = """
CREATE TABLE IF NOT EXISTS property_versions (
  type_id TEXT NOT NULL, id INTEGER NOT NULL, timestamp TEXT NOT NULL, source_type TEXT NOT NULL,
  source_id TEXT, user_id INTEGER, changed TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS property_versions_record ON property_versions (type_id, id);
"""
LEGACY_TABLE = "property_history"  # one row per value (files written before the compact table)
TABLES = ("property_versions",)

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
        self._migrate()

    def _migrate(self) -> None:
        """Fold a legacy ``property_history`` table (one row per value) into the compact one."""
        found = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (LEGACY_TABLE,)
        ).fetchone()
        if not found:
            return
        rows = self._db.execute(
            "SELECT type_id, id, property, value, timestamp, source_type, source_id, user_id "
            f"FROM {LEGACY_TABLE} ORDER BY rowid"  # noqa: S608 - a fixed name
        ).fetchall()
        by_type: dict[str, list[tuple[int, str, str, str, WriteSource]]] = {}
        for tid, rid, prop, value, stamp, st, sid, uid in rows:
            by_type.setdefault(tid, []).append((rid, prop, value, stamp, WriteSource(st, sid, uid)))
        self._db.execute("BEGIN")
        for tid, versions in by_type.items():
            self.append(tid, versions)
        self._db.execute(f"DROP TABLE {LEGACY_TABLE}")
        self._db.execute("COMMIT")

    def append(
        self,
        type_id: str,
        rows: Iterable[tuple[int, str, str, str, WriteSource]],
    ) -> None:
        """``rows``: (record id, property, value, timestamp, source). Consecutive rows of one
        record, time and source are one write (one stored row); a property seen twice in a row
        of them starts another, so every version is kept."""
        out: list[tuple[Any, ...]] = []
        key: tuple[int, str, WriteSource] | None = None
        changed: dict[str, str] = {}
        for rid, prop, value, stamp, src in rows:
            if key != (rid, stamp, src) or prop in changed:
                if key is not None:
                    out.append(_row(type_id, key, changed))
                key, changed = (rid, stamp, src), {}
            changed[prop] = value
        if key is not None:
            out.append(_row(type_id, key, changed))
        if out:
            self._db.executemany("INSERT INTO property_versions VALUES (?, ?, ?, ?, ?, ?, ?)", out)

    def append_writes(
        self, type_id: str, writes: Iterable[tuple[int, str, WriteSource, dict[str, str]]]
    ) -> None:
        """``writes``: (record id, timestamp, source, the values that write changed), one per
        record write — stored as :meth:`append` stores those values (one row per write), without
        a tuple per value first. Writes that changed nothing store nothing."""
        out = [
            _row(type_id, (rid, stamp, src), changed)
            for rid, stamp, src, changed in writes
            if changed
        ]
        if out:
            self._db.executemany("INSERT INTO property_versions VALUES (?, ?, ?, ?, ?, ?, ?)", out)

    def _writes(
        self, type_id: str, ids: list[int], order: str
    ) -> Iterable[tuple[int, str, WriteSource, dict[str, str]]]:
        for lo in range(0, len(ids), SQL_CHUNK):
            chunk = ids[lo : lo + SQL_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT id, timestamp, source_type, source_id, user_id, changed "
                f"FROM property_versions WHERE type_id = ? AND id IN ({marks}) "  # noqa: S608
                f"ORDER BY {order}",
                (type_id, *chunk),
            )
            for rid, stamp, st, sid, uid, changed in rows:
                yield rid, stamp, WriteSource(st, sid, uid), orjson.loads(changed)

    def read(
        self, type_id: str, ids: list[int], properties: list[str]
    ) -> dict[int, dict[str, list[dict[str, Any]]]]:
        """Versions of ``properties`` for each record, newest first (ties: last written first)."""
        out: dict[int, dict[str, list[dict[str, Any]]]] = {
            rid: {p: [] for p in properties} for rid in ids
        }
        if not ids or not properties:
            return out
        for rid, stamp, src, changed in self._writes(
            type_id, list(dict.fromkeys(ids)), "timestamp DESC, rowid DESC"
        ):
            versions = out[rid]
            for prop in properties:
                value = changed.get(prop)
                if value is not None:
                    versions[prop].append(version_json(value, stamp, src))
        return out

    def latest_sources(self, type_id: str, rid: int) -> dict[str, str]:
        """Property → sourceType of its newest version (for tests and the seed manifest)."""
        out: dict[str, str] = {}
        for _, _, src, changed in self._writes(type_id, [rid], "timestamp, rowid"):
            out.update(dict.fromkeys(changed, src.source_type))
        return out

    def move(self, type_id: str, old_ids: list[int], new_id: int) -> None:
        """A merge: the versions of every merged record become the survivor's."""
        marks = ",".join("?" * len(old_ids))
        self._db.execute(
            f"UPDATE property_versions SET id = ? WHERE type_id = ? AND id IN ({marks})",  # noqa: S608
            (new_id, type_id, *old_ids),
        )

    def forget(self, type_id: str, rid: int) -> None:
        """GDPR delete: the record's history goes with it."""
        self._db.execute(
            "DELETE FROM property_versions WHERE type_id = ? AND id = ?", (type_id, rid)
        )

    def count(self) -> int:
        """Versions stored (one per changed value), for benches."""
        return sum(
            len(orjson.loads(c))
            for (c,) in self._db.execute("SELECT changed FROM property_versions")
        )


def _row(type_id: str, key: tuple[int, str, WriteSource], changed: dict[str, str]) -> tuple:
    rid, stamp, src = key
    return (
        type_id,
        rid,
        stamp,
        src.source_type,
        src.source_id,
        src.user_id,
        orjson.dumps(changed).decode(),
    )
