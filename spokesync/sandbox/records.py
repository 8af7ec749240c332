"""One object type's records, packed so that a portal of millions fits in memory.

A record is kept as one ``bytes`` value: a JSON array ``[pattern, created, updated, v1, v2, …]``
(orjson) whose ``pattern`` numbers the tuple of property names the values belong to, in the
record's own order. Records of one type share a handful of patterns (the properties a mapping
writes), so the names are stored once per pattern, not once per record; ``created`` /
``updated`` are ``0`` when they equal the record's created / modified property, as they almost
always do. A 35-property company costs ~0.6 KB instead of ~3 KB as a dict of strings.

:class:`RecordTable` is a mapping of record id → :class:`Record` like the dict it replaces:
``get`` unpacks a record (~1–2 µs) into a :class:`Record` with a plain ``properties`` dict, and
keeps the last few thousand unpacked records by id, so one request sees one object per record
(a write changes the object, then :meth:`RecordTable.put` packs it again). Scans that need one
property (a search index, the unique index) read it from the packed value without building
records (:meth:`RecordTable.column`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

CACHE_SIZE = 4096  # unpacked records kept by id (cleared whole when full)
MAX_PATTERNS = 100_000  # beyond this a record keeps its names (a dict) instead of a pattern


def _exact(packed: bytes) -> bytes:
    """A copy of exactly its length: orjson's answer keeps its ~8 KB output buffer."""
    return bytes(memoryview(packed))


@dataclass(slots=True)
class Record:
    id: int
    properties: dict[str, str]
    created_at: str
    updated_at: str
    archived: bool = False
    archived_at: str | None = None


class RecordTable:
    """Records of one object type by id (see the module docstring)."""

    __slots__ = (
        "created_property",
        "modified_property",
        "_blobs",
        "_archived",
        "_cache",
        "_patterns",
        "_pattern_ids",
        "_positions",
    )

    def __init__(self, created_property: str, modified_property: str) -> None:
        self.created_property = created_property
        self.modified_property = modified_property
        self._blobs: dict[int, bytes] = {}
        self._archived: dict[int, str | None] = {}  # archived record id -> archivedAt
        self._cache: dict[int, Record] = {}
        self._patterns: list[tuple[str, ...]] = []
        self._pattern_ids: dict[tuple[str, ...], int] = {}
        self._positions: dict[str, list[int]] = {}  # property -> its index in each pattern

    # ------------------------------------------------------------ packing
    def _pack(self, rec: Record) -> bytes:
        props = rec.properties
        created: Any = rec.created_at
        if created == props.get(self.created_property):
            created = 0
        updated: Any = rec.updated_at
        if updated == props.get(self.modified_property):
            updated = 0
        names = tuple(props)
        pid = self._pattern_ids.get(names)
        if pid is None:
            if len(self._patterns) >= MAX_PATTERNS:
                return _exact(orjson.dumps([-1, created, updated, props]))
            pid = self._pattern_ids[names] = len(self._patterns)
            self._patterns.append(names)
            for name, positions in self._positions.items():
                positions.append(names.index(name) + 3 if name in names else 0)
        return _exact(orjson.dumps([pid, created, updated, *props.values()]))

    def _unpack(self, rid: int, blob: bytes) -> Record:
        values = orjson.loads(blob)
        pid, created, updated = values[0], values[1], values[2]
        if pid < 0:
            props = values[3]
        else:
            it = iter(values)
            next(it), next(it), next(it)
            props = dict(zip(self._patterns[pid], it, strict=False))
        if created == 0:
            created = props.get(self.created_property)
        if updated == 0:
            updated = props.get(self.modified_property)
        archived = self._archived
        if rid in archived:
            return Record(rid, props, created, updated, True, archived[rid])
        return Record(rid, props, created, updated)

    # ------------------------------------------------------------ mapping
    def get(self, rid: int, default: Any = None) -> Any:
        rec = self._cache.get(rid)
        if rec is not None:
            return rec
        blob = self._blobs.get(rid)
        if blob is None:
            return default
        rec = self._unpack(rid, blob)
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[rid] = rec
        return rec

    def __getitem__(self, rid: int) -> Record:
        rec = self.get(rid)
        if rec is None:
            raise KeyError(rid)
        return rec

    def __contains__(self, rid: object) -> bool:
        return rid in self._blobs

    def __len__(self) -> int:
        return len(self._blobs)

    def __iter__(self) -> Iterator[int]:
        return iter(self._blobs)

    def keys(self) -> Iterator[int]:
        return iter(self._blobs)

    def values(self) -> Iterator[Record]:
        """Every record, unpacked one by one (not kept: a scan does not fill the cache)."""
        cache, unpack = self._cache, self._unpack
        for rid, blob in self._blobs.items():
            rec = cache.get(rid)
            yield rec if rec is not None else unpack(rid, blob)

    def is_live(self, rid: int) -> bool:
        """A record of this type that is not archived (nothing unpacked)."""
        return rid in self._blobs and rid not in self._archived

    def is_archived(self, rid: int) -> bool:
        return rid in self._archived

    def put(self, rec: Record, *, cache: bool = True) -> None:
        """Store ``rec`` as it is now (created or changed)."""
        self._blobs[rec.id] = self._pack(rec)
        if rec.archived:
            self._archived[rec.id] = rec.archived_at
        else:
            self._archived.pop(rec.id, None)
        if cache:
            if len(self._cache) >= CACHE_SIZE and rec.id not in self._cache:
                self._cache.clear()
            self._cache[rec.id] = rec
        else:
            self._cache.pop(rec.id, None)

    def pop(self, rid: int, default: Any = None) -> Any:
        rec = self.get(rid)
        if rec is None:
            return default
        del self._blobs[rid]
        self._archived.pop(rid, None)
        self._cache.pop(rid, None)
        return rec

    def column(self, name: str) -> Iterator[tuple[int, str]]:
        """(id, value) of every live record with a value for ``name``, read straight from the
        packed records (ids in storage order)."""
        positions = self._positions.get(name)
        if positions is None:
            positions = self._positions[name] = [
                names.index(name) + 3 if name in names else 0 for names in self._patterns
            ]
        archived, loads = self._archived, orjson.loads
        for rid, blob in self._blobs.items():
            if rid in archived:
                continue
            values = loads(blob)
            pid = values[0]
            if pid < 0:
                value = values[3].get(name)
            else:
                at = positions[pid]
                value = values[at] if at else None
            if value:
                yield rid, value


__all__ = ["Record", "RecordTable"]
