"""Associations in memory, packed: millions of links without a dict and a set per record.

Per (from type, to type) one dict maps a from-record id to its links. A link is one integer,
``to_id << SHIFT | typeset``, where ``typeset`` numbers an interned frozenset of association
type ids (``{279, 1}``: unlabeled + Primary). A record with one link keeps that integer; with
more, a sorted ``array('q')`` of them (one entry per target, so a target is found by
bisection). A contact → company link in both directions costs ~150 bytes instead of ~850.

Reads answer what the dict of dicts of sets answered: ``get((from type, from id, to type))`` is
a fresh ``{to_id: {type ids}}`` (or the default when the record has no links)."""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterator
from typing import Any

SHIFT = 20  # bits for the typeset number
MASK = (1 << SHIFT) - 1


class AssociationIndex:
    def __init__(self) -> None:
        self._pairs: dict[tuple[str, str], dict[int, Any]] = {}
        self._typesets: list[frozenset[int]] = []
        self._typeset_ids: dict[frozenset[int], int] = {}
        self._plus: dict[tuple[int, int], int] = {}  # (typeset, type id) -> typeset with it

    def _tsid(self, types: frozenset[int]) -> int:
        tsid = self._typeset_ids.get(types)
        if tsid is None:
            tsid = self._typeset_ids[types] = len(self._typesets)
            if tsid > MASK:
                raise OverflowError("too many distinct sets of association types")
            self._typesets.append(types)
        return tsid

    def _with(self, tsid: int, type_id: int) -> int:
        """The typeset number of ``tsid``'s types plus ``type_id`` (-1: the empty set)."""
        key = (tsid, type_id)
        out = self._plus.get(key)
        if out is None:
            base = self._typesets[tsid] if tsid >= 0 else frozenset()
            out = self._plus[key] = self._tsid(base | {type_id})
        return out

    def _code(self, to_id: int, types: frozenset[int]) -> int:
        return to_id << SHIFT | self._tsid(types)

    def _targets(self, links: Any) -> dict[int, set[int]]:
        sets = self._typesets
        if type(links) is int:
            return {links >> SHIFT: set(sets[links & MASK])}
        return {code >> SHIFT: set(sets[code & MASK]) for code in links}

    # ------------------------------------------------------------ reads
    def get(self, key: tuple[str, int, str], default: Any = None) -> Any:
        """``{to_id: {type ids}}`` of one record towards one type (a copy)."""
        from_type, from_id, to_type = key
        table = self._pairs.get((from_type, to_type))
        links = None if table is None else table.get(from_id)
        return default if links is None else self._targets(links)

    def target_ids(self, from_type: str, from_id: int, to_type: str) -> list[int]:
        table = self._pairs.get((from_type, to_type))
        links = None if table is None else table.get(from_id)
        if links is None:
            return []
        if type(links) is int:
            return [links >> SHIFT]
        return [code >> SHIFT for code in links]

    def items(self) -> Iterator[tuple[tuple[str, int, str], dict[int, set[int]]]]:
        for (from_type, to_type), table in list(self._pairs.items()):
            for from_id, links in list(table.items()):
                yield (from_type, from_id, to_type), self._targets(links)

    def of_record(self, from_type: str, from_id: int) -> Iterator[tuple[str, dict[int, set[int]]]]:
        """(to type, targets) of every type the record links to."""
        for (ft, to_type), table in list(self._pairs.items()):
            links = table.get(from_id) if ft == from_type else None
            if links is not None:
                yield to_type, self._targets(links)

    def __len__(self) -> int:
        """Links in every direction."""
        return sum(
            1 if type(v) is int else len(v)
            for table in self._pairs.values()
            for v in table.values()
        )

    # ------------------------------------------------------------ writes
    def add(self, from_type: str, from_id: int, to_type: str, to_id: int, type_id: int) -> None:
        table = self._pairs.setdefault((from_type, to_type), {})
        links = table.get(from_id)
        low = to_id << SHIFT
        if links is None:
            table[from_id] = low | self._with(-1, type_id)
            return
        if type(links) is int:
            if links >> SHIFT == to_id:
                table[from_id] = low | self._with(links & MASK, type_id)
                return
            new = low | self._with(-1, type_id)
            table[from_id] = array("q", sorted((links, new)))
            return
        i = bisect.bisect_left(links, low)
        if i < len(links) and links[i] >> SHIFT == to_id:
            links[i] = low | self._with(links[i] & MASK, type_id)
            return
        links.insert(i, low | self._with(-1, type_id))

    def remove(
        self, from_type: str, from_id: int, to_type: str, to_id: int, type_id: int | None
    ) -> bool:
        """Remove one type id between a pair, or all when ``type_id`` is None; False when the
        pair had no link."""
        table = self._pairs.get((from_type, to_type))
        links = None if table is None else table.get(from_id)
        if links is None or table is None:
            return False
        if type(links) is int:
            if links >> SHIFT != to_id:
                return False
            left = self._without(links, type_id)
            if left is None:
                del table[from_id]
            else:
                table[from_id] = left
            return True
        i = bisect.bisect_left(links, to_id << SHIFT)
        if i == len(links) or links[i] >> SHIFT != to_id:
            return False
        left = self._without(links[i], type_id)
        if left is None:
            del links[i]
        else:
            links[i] = left
        if len(links) == 1:
            table[from_id] = links[0]
        elif not links:
            del table[from_id]
        return True

    def _without(self, code: int, type_id: int | None) -> int | None:
        if type_id is None:
            return None
        types = self._typesets[code & MASK] - {type_id}
        return self._code(code >> SHIFT, types) if types else None


__all__ = ["AssociationIndex"]
