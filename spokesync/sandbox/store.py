"""The sandbox portal's state: held in memory for speed, written through to SQLite (WAL) so it
survives a restart. One connection, one transaction per request that writes."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from spokesync.sandbox.catalog import (
    DEFAULT_GROUPS,
    DEFAULT_PROPERTIES,
    EPOCH_ISO,
    AssociationType,
    ObjectTypeDef,
    PropertyDef,
    default_association_types,
    default_object_types,
)
from spokesync.sandbox.history import TABLES as HISTORY_TABLES
from spokesync.sandbox.history import PropertyHistory
from spokesync.sandbox.links import AssociationIndex
from spokesync.sandbox.records import Record, RecordTable

FIRST_RECORD_ID = 10_000_001
FIRST_CUSTOM_TYPE = 3_500_001
FIRST_ASSOCIATION_TYPE_ID = 100_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
  type_id TEXT NOT NULL, id INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  archived INTEGER NOT NULL, archived_at TEXT, properties TEXT NOT NULL,
  PRIMARY KEY (type_id, id));
CREATE TABLE IF NOT EXISTS associations (
  from_type TEXT NOT NULL, from_id INTEGER NOT NULL, to_type TEXT NOT NULL, to_id INTEGER NOT NULL,
  type_id INTEGER NOT NULL, PRIMARY KEY (from_type, from_id, to_type, to_id, type_id));
CREATE TABLE IF NOT EXISTS custom_properties (
  type_id TEXT NOT NULL, name TEXT NOT NULL, definition TEXT NOT NULL, PRIMARY KEY (type_id, name));
CREATE TABLE IF NOT EXISTS property_groups (
  type_id TEXT NOT NULL, name TEXT NOT NULL, definition TEXT NOT NULL, PRIMARY KEY (type_id, name));
CREATE TABLE IF NOT EXISTS object_schemas (type_id TEXT PRIMARY KEY, definition TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS association_types (
  from_type TEXT NOT NULL, to_type TEXT NOT NULL, type_id INTEGER NOT NULL, definition TEXT NOT NULL,
  PRIMARY KEY (from_type, to_type, type_id));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS merged_ids (
  type_id TEXT NOT NULL, old_id INTEGER NOT NULL, new_id INTEGER NOT NULL,
  PRIMARY KEY (type_id, old_id));
CREATE TABLE IF NOT EXISTS gdpr_blocklist (email TEXT PRIMARY KEY);
"""


class Store:
    """In-memory portal state backed by SQLite. Not thread-safe by itself: the app calls it from
    one event loop without awaiting in between, so each request's changes are atomic."""

    def __init__(self, path: Path | None, portal_id: int) -> None:
        self.portal_id = portal_id
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            str(path) if path else ":memory:", isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self.history = PropertyHistory(self._db)
        self._lock = threading.Lock()  # the TestClient may call from another thread
        self._in_transaction = False
        self.version = 0  # moves on every change of records, associations or properties
        # the version at each type's last record change, and at the last property change: a
        # search index of one type's property stays valid while a push writes another type
        self.record_versions: dict[str, int] = {}
        self.properties_version = 0
        self._unique_names: dict[str, tuple[int, list[str]]] = {}
        self._pending_links: list[tuple[str, int, str, int, int]] = []  # inserted at COMMIT
        self._load()

    # ---------------------------------------------------------------- loading
    def _load(self) -> None:
        self.version = getattr(self, "version", 0) + 1
        self.record_versions = {}
        self.properties_version = self.version
        self.object_types: dict[str, ObjectTypeDef] = {t.type_id: t for t in default_object_types()}
        self.properties: dict[str, dict[str, PropertyDef]] = {
            tid: {p.name: p for p in props} for tid, props in DEFAULT_PROPERTIES.items()
        }
        self.groups: dict[str, dict[str, dict[str, Any]]] = {
            tid: {
                name: {"name": name, "label": label, "displayOrder": i, "archived": False}
                for i, (name, label) in enumerate(groups)
            }
            for tid, groups in DEFAULT_GROUPS.items()
        }
        self.association_types: dict[tuple[str, str], list[AssociationType]] = {}
        for at in default_association_types():
            self.association_types.setdefault((at.from_type, at.to_type), []).append(at)
        self.records: dict[str, RecordTable] = {}
        for tid in self.object_types:
            self._table(tid)
        self.associations = AssociationIndex()
        self._id_cache: dict[str, list[int]] = {}
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        self.next_id = int(meta.get("next_id", FIRST_RECORD_ID))
        self.next_custom_type = int(meta.get("next_custom_type", FIRST_CUSTOM_TYPE))
        self.next_association_type = int(
            meta.get("next_association_type", FIRST_ASSOCIATION_TYPE_ID)
        )

        for (definition,) in self._db.execute("SELECT definition FROM object_schemas"):
            self._install_schema(json.loads(definition))
        for tid, definition in self._db.execute("SELECT type_id, definition FROM property_groups"):
            d = json.loads(definition)
            self.groups.setdefault(tid, {})[d["name"]] = d
        for tid, definition in self._db.execute(
            "SELECT type_id, definition FROM custom_properties"
        ):
            prop = PropertyDef.from_json(json.loads(definition))
            self.properties.setdefault(tid, {})[prop.name] = prop
        for (definition,) in self._db.execute("SELECT definition FROM association_types"):
            d = json.loads(definition)
            at = AssociationType(**d)
            self.association_types.setdefault((at.from_type, at.to_type), []).append(at)
        for tid, rid, created, updated, archived, archived_at, props in self._db.execute(
            "SELECT type_id, id, created_at, updated_at, archived, archived_at, properties FROM records"
        ):
            self._table(tid).put(
                Record(rid, orjson.loads(props), created, updated, bool(archived), archived_at),
                cache=False,
            )
        add = self.associations.add
        for ft, fid, tt, tid_, type_id in self._db.execute(
            "SELECT from_type, from_id, to_type, to_id, type_id FROM associations"
        ):
            add(ft, fid, tt, tid_, type_id)
        self.merged: dict[str, dict[int, int]] = {}
        for tid, old, new in self._db.execute("SELECT type_id, old_id, new_id FROM merged_ids"):
            self.merged.setdefault(tid, {})[old] = new
        self.blocklist: set[str] = {
            e for (e,) in self._db.execute("SELECT email FROM gdpr_blocklist")
        }
        self._rebuild_unique()

    def _install_schema(self, schema: dict[str, Any]) -> None:
        tid = schema["objectTypeId"]
        props = schema.get("_properties", [])
        self.object_types[tid] = ObjectTypeDef(
            type_id=tid,
            name=schema["name"],
            singular=schema["name"],
            label_singular=schema["labels"]["singular"],
            label_plural=schema["labels"]["plural"],
            read_scopes=["crm.objects.custom.read"],
            write_scopes=["crm.objects.custom.write"],
            created_property="hs_createdate",
            required=list(schema.get("requiredProperties", [])),
            default_properties=["hs_createdate", "hs_lastmodifieddate", "hs_object_id"],
            fully_qualified_name=schema["fullyQualifiedName"],
            primary_display_property=schema.get("primaryDisplayProperty"),
            schema=schema,
        )
        self._table(tid)
        self.properties.setdefault(tid, {})
        for d in props:
            p = PropertyDef.from_json(d)
            self.properties[tid][p.name] = p
        self.groups.setdefault(tid, {}).setdefault(
            f"{schema['name']}_information",
            {
                "name": f"{schema['name']}_information",
                "label": f"{schema['labels']['singular']} information",
                "displayOrder": 0,
                "archived": False,
            },
        )

    def _table(self, type_id: str) -> RecordTable:
        table = self.records.get(type_id)
        if table is None:
            ot = self.object_types.get(type_id)
            table = self.records[type_id] = RecordTable(
                ot.created_property if ot else "createdate",
                ot.modified_property if ot else "hs_lastmodifieddate",
            )
        return table

    def _rebuild_unique(self) -> None:
        self.unique: dict[str, dict[str, dict[str, int]]] = {}
        for tid in self.object_types:
            table = self._table(tid)
            self.unique[tid] = {
                name: {v: rid for rid, v in table.column(name)}
                for name in self.unique_properties(tid)
            }

    # ---------------------------------------------------------------- lookups
    def resolve_type(self, name: str) -> ObjectTypeDef | None:
        """The object type a path or body names, as HubSpot reads it: a standard object by
        type id (``0-1``), plural or singular name; a custom object only by its type id
        (``2-…``), fully qualified name (``p{portal}_{name}``) or short-hand ``p_{name}``. A
        custom object's bare name is refused, as HubSpot refuses it since June 2025 (400
        "Unable to infer object type from: …"; see docs/sandbox.md)."""
        key = name.strip().lower()
        if key in self.object_types:
            return self.object_types[key]
        for ot in self.object_types.values():
            if ot.type_id.startswith("2-"):
                names = {f"p_{ot.name.lower()}", (ot.fully_qualified_name or "").lower()}
            else:
                names = {ot.name.lower(), ot.singular.lower()}
            if key in names:
                return ot
        return None

    def custom_type_named(self, name: str) -> ObjectTypeDef | None:
        """The custom object whose schema ``name`` this is (a create's uniqueness check)."""
        key = name.strip().lower()
        return next(
            (
                ot
                for ot in self.object_types.values()
                if ot.type_id.startswith("2-") and ot.name.lower() == key
            ),
            None,
        )

    def sorted_ids(self, type_id: str) -> list[int]:
        """Record ids of a type in order (only :meth:`forget_records` deletes, and it drops the
        cache, so otherwise a count change means new records and a stale cache)."""
        table = self.records.get(type_id, {})
        cached = self._id_cache.get(type_id)
        if cached is None or len(cached) != len(table):
            cached = sorted(table)
            self._id_cache[type_id] = cached
        return cached

    def survivor_id(self, type_id: str, rid: int) -> int | None:
        """The record a merged-away id now answers with (None: not merged)."""
        return self.merged.get(type_id, {}).get(rid)

    def unique_properties(self, type_id: str) -> list[str]:
        """Properties whose values identify a record (contacts' email too); do not change it."""
        cached = self._unique_names.get(type_id)
        if cached is not None and cached[0] == self.version:
            return cached[1]
        names = [p.name for p in self.properties.get(type_id, {}).values() if p.has_unique_value]
        if type_id == "0-1":
            names.append("email")
        self._unique_names[type_id] = (self.version, names)
        return names

    def find_by_unique(self, type_id: str, prop: str, value: str) -> Record | None:
        rid = self.unique.get(type_id, {}).get(prop, {}).get(value)
        return None if rid is None else self.records[type_id].get(rid)

    def is_live(self, type_id: str, rid: int) -> bool:
        """A record of that type that is not archived (nothing unpacked)."""
        table = self.records.get(type_id)
        return table is not None and table.is_live(rid)

    def association_types_between(self, from_type: str, to_type: str) -> list[AssociationType]:
        return self.association_types.get((from_type, to_type), [])

    # ---------------------------------------------------------------- writes
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN")
            self._in_transaction = True
            try:
                yield self._db
                self._flush_links()
            except BaseException:
                self._pending_links.clear()
                self._db.execute("ROLLBACK")
                raise
            finally:
                self._in_transaction = False
            self._db.execute("COMMIT")

    def _flush_links(self) -> None:
        if self._pending_links:
            self._db.executemany(
                "INSERT OR IGNORE INTO associations VALUES (?, ?, ?, ?, ?)", self._pending_links
            )
            self._pending_links.clear()

    def allocate_ids(self, count: int) -> list[int]:
        start = self.next_id
        self.next_id += count
        self._set_meta("next_id", self.next_id)
        return list(range(start, start + count))

    def _set_meta(self, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, str(value)),
        )

    def save_records(
        self,
        type_id: str,
        records: Iterable[Record],
        *,
        previous: dict[int, dict[str, str]] | None = None,
    ) -> None:
        """Write records (already changed in memory) and keep the unique index in step.
        ``previous`` holds the properties each record had before, to free old unique values."""
        self.version += 1
        self.record_versions[type_id] = self.version
        rows = []
        index = self.unique.setdefault(type_id, {})
        table = self._table(type_id)
        for rec in records:
            table.put(rec)
            old = (previous or {}).get(rec.id, {})
            for name, values in index.items():
                old_v, new_v = old.get(name), None if rec.archived else rec.properties.get(name)
                if old_v and old_v != new_v and values.get(old_v) == rec.id:
                    del values[old_v]
                if new_v:
                    values[new_v] = rec.id
            rows.append(
                (
                    type_id,
                    rec.id,
                    rec.created_at,
                    rec.updated_at,
                    int(rec.archived),
                    rec.archived_at,
                    orjson.dumps(rec.properties).decode(),
                )
            )
        self._db.executemany(
            "INSERT OR REPLACE INTO records(type_id, id, created_at, updated_at, archived, "
            "archived_at, properties) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def forget_records(self, type_id: str, ids: list[int]) -> None:
        """Drop records for good (merged away, GDPR-deleted): no longer listed or archived."""
        self.version += 1
        self.record_versions[type_id] = self.version
        table = self._table(type_id)
        index = self.unique.get(type_id, {})
        for rid in ids:
            rec = table.pop(rid, None)
            if rec is None:
                continue
            for name, values in index.items():
                v = rec.properties.get(name)
                if v and values.get(v) == rid:
                    del values[v]
        self._id_cache.pop(type_id, None)
        self._db.executemany(
            "DELETE FROM records WHERE type_id = ? AND id = ?", [(type_id, rid) for rid in ids]
        )

    def save_merge(self, type_id: str, old_ids: list[int], new_id: int) -> None:
        """Old ids (and every id already merged into them) now answer with ``new_id``."""
        self.version += 1
        redirects = self.merged.setdefault(type_id, {})
        moved = [old for old, new in redirects.items() if new in old_ids]
        rows = [(type_id, old, new_id) for old in [*old_ids, *moved]]
        for _, old, new in rows:
            redirects[old] = new
        self._db.executemany("INSERT OR REPLACE INTO merged_ids VALUES (?, ?, ?)", rows)

    def forget_merges(self, type_id: str, new_id: int) -> None:
        """The ids that answered with ``new_id`` answer nothing any more."""
        redirects = self.merged.get(type_id, {})
        for old in [o for o, n in redirects.items() if n == new_id]:
            del redirects[old]
        self._db.execute(
            "DELETE FROM merged_ids WHERE type_id = ? AND new_id = ?", (type_id, new_id)
        )

    def block_email(self, email: str) -> None:
        self.blocklist.add(email)
        self._db.execute("INSERT OR IGNORE INTO gdpr_blocklist VALUES (?)", (email,))

    def add_association(
        self, from_type: str, from_id: int, to_type: str, to_id: int, type_id: int
    ) -> None:
        self.version += 1
        self.associations.add(from_type, from_id, to_type, to_id, type_id)
        self._pending_links.append((from_type, from_id, to_type, to_id, type_id))
        if not self._in_transaction:
            self._flush_links()

    def remove_association(
        self, from_type: str, from_id: int, to_type: str, to_id: int, type_id: int | None
    ) -> None:
        """Remove one type id between a pair, or every type when ``type_id`` is None."""
        self.version += 1
        self._flush_links()  # a link added earlier in this transaction goes first
        if not self.associations.remove(from_type, from_id, to_type, to_id, type_id):
            return
        sql = "DELETE FROM associations WHERE from_type=? AND from_id=? AND to_type=? AND to_id=?"
        params: tuple[Any, ...] = (from_type, from_id, to_type, to_id)
        if type_id is not None:
            sql += " AND type_id=?"
            params += (type_id,)
        self._db.execute(sql, params)

    def save_property(self, type_id: str, prop: PropertyDef) -> None:
        self.version += 1
        self.properties_version = self.version
        self.properties.setdefault(type_id, {})[prop.name] = prop
        if prop.has_unique_value:
            index = self.unique.setdefault(type_id, {}).setdefault(prop.name, {})
            index.update((v, rid) for rid, v in self._table(type_id).column(prop.name))
        self._db.execute(
            "INSERT OR REPLACE INTO custom_properties VALUES (?, ?, ?)",
            (type_id, prop.name, json.dumps(prop.to_json())),
        )

    def save_group(self, type_id: str, group: dict[str, Any]) -> None:
        self.groups.setdefault(type_id, {})[group["name"]] = group
        self._db.execute(
            "INSERT OR REPLACE INTO property_groups VALUES (?, ?, ?)",
            (type_id, group["name"], json.dumps(group)),
        )

    def save_schema(self, schema: dict[str, Any]) -> ObjectTypeDef:
        self.version += 1
        self.properties_version = self.version
        self._install_schema(schema)
        self.next_custom_type = max(self.next_custom_type, int(schema["objectTypeId"][2:]) + 1)
        self._set_meta("next_custom_type", self.next_custom_type)
        self._db.execute(
            "INSERT OR REPLACE INTO object_schemas VALUES (?, ?)",
            (schema["objectTypeId"], json.dumps(schema)),
        )
        self._rebuild_unique()
        return self.object_types[schema["objectTypeId"]]

    def save_association_type(self, at: AssociationType) -> None:
        self.association_types.setdefault((at.from_type, at.to_type), []).append(at)
        self.next_association_type = max(self.next_association_type, at.type_id + 1)
        self._set_meta("next_association_type", self.next_association_type)
        self._db.execute(
            "INSERT OR REPLACE INTO association_types VALUES (?, ?, ?, ?)",
            (
                at.from_type,
                at.to_type,
                at.type_id,
                json.dumps(
                    {
                        "from_type": at.from_type,
                        "to_type": at.to_type,
                        "type_id": at.type_id,
                        "category": at.category,
                        "label": at.label,
                        "inverse_id": at.inverse_id,
                    }
                ),
            ),
        )

    def reload(self) -> None:
        """Re-read everything from SQLite (after a rolled-back transaction)."""
        with self._lock:
            self._load()

    def reset(self) -> None:
        """Forget every record, association, custom property, group and schema."""
        with self.transaction() as db:
            for table in (
                "records",
                "associations",
                "custom_properties",
                "property_groups",
                "object_schemas",
                "association_types",
                "meta",
                "merged_ids",
                "gdpr_blocklist",
                *HISTORY_TABLES,
            ):
                db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
        self._load()

    def close(self) -> None:
        self._db.close()


__all__ = ["EPOCH_ISO", "FIRST_RECORD_ID", "Record", "Store"]
