"""Which stretches of an incremental refresh's window need reading, and which only our own
writes fill.

HubSpot bumps a record's last-modified date on every write, ours included, so a refresh after
a large push would read back every record the push wrote (400k records: 2,000 search pages at
5 a second). We know, from HubSpot's ``updatedAt`` in each confirmed batch
(:mod:`spokesync.state.own_writes`), when each of those records was last modified by us. The
search answers with ``total``, the number of records whose last-modified date lies in a
range, in its first page. So for a range of time:

- if HubSpot counts exactly as many records there as we know were last modified there by our
  writes, nothing else was modified in it and nothing we wrote was modified again later (a
  record modified again *leaves* the range for a later one), so it holds nothing to read;
- otherwise the range is split at the median of our writes in it and each half checked, newest
  half first (a record edited after our write moves to a later time, so reading the later
  half first tells us which of ours left the earlier one), down to ranges worth reading.

Records ours did not touch land at times where we expect no record, records of ours edited
later leave their range: both break the count. What a count cannot see (documented in
docs/existing-portal.md, closed by the weekly full refresh or the record's next edit): an edit
to a record we wrote made after that sync's refresh and *before* our write of it (ours moved the
date again), and an edit landing in the same counted part (at most ``PART_RECORDS`` of our
writes, seconds of a push) as our write of that record; also one edit exactly offset by a
record HubSpot archived in the same part. That is why a push small enough to read back cheaply
(``READBACK_LIMIT``) is still read back whole.

A large push counts its own parts while it runs (:mod:`spokesync.sync.verify_push`); the ranges
those counts proved are left out of the window (``skip``), so the refresh counts only what they
did not prove.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

READBACK_LIMIT = 10_000  # our writes in the window: read back whole up to this many (50 pages)
PART_RECORDS = 5_000  # our writes per counted part: the finest time an edit can hide in
# HubSpot documents no exact ``total`` past the 10,000-result cap (integrators paginate to
# count past it): a count that high never proves a part clean, and parts stay well below it.
TRUSTED_TOTAL = 10_000
GAP_MS = 60_000  # no write of ours for this long: the gap is read, not counted
LEAF = 1_000  # a range with this many records or fewer is read, not split
PAGE = 200
COUNT_LIMIT = 200  # records on a count's page (a range this small is read by the count itself)


class KnownTimes:
    """Per HubSpot id, the last modification time we know (sorted, for range counts); every
    record the refresh reads updates it."""

    def __init__(self, ids: list[str], ms: list[int]) -> None:
        self._by_id = dict(zip(ids, ms, strict=True))
        self._sorted = sorted(ms)

    def __len__(self) -> int:
        return len(self._sorted)

    def count(self, lo: int, hi: int) -> int:
        return bisect.bisect_right(self._sorted, hi) - bisect.bisect_left(self._sorted, lo)

    def median(self, lo: int, hi: int) -> int | None:
        a, b = bisect.bisect_left(self._sorted, lo), bisect.bisect_right(self._sorted, hi)
        return self._sorted[(a + b - 1) // 2] if b > a else None

    def newest(self, lo: int, hi: int) -> int | None:
        b = bisect.bisect_right(self._sorted, hi)
        return self._sorted[b - 1] if b and self._sorted[b - 1] >= lo else None

    def saw(self, hubspot_id: str, ms: int) -> None:
        """A read showed ``hubspot_id`` last modified at ``ms``."""
        old = self._by_id.get(hubspot_id)
        if old == ms:
            return
        if old is not None:
            del self._sorted[bisect.bisect_left(self._sorted, old)]
        self._by_id[hubspot_id] = ms
        bisect.insort(self._sorted, ms)

    def parts(
        self, since: int, skip: Sequence[tuple[int, int]] = (), count: bool = True
    ) -> list[tuple[str, int, int | None]]:
        """The window from ``since`` on, in time order, leaving out the ``skip`` ranges
        (verified while a push ran: :mod:`spokesync.sync.verify_push`): ``("read", lo, hi)``
        stretches without our writes and ``("count", lo, hi)`` parts of at most
        ``PART_RECORDS`` of them (a part never splits one millisecond); the last stretch is
        open-ended (``hi`` None). ``count=False``: every stretch is read."""
        out: list[tuple[str, int, int | None]] = []
        lo = since
        for skip_lo, skip_hi in sorted(skip):
            if skip_hi < lo:
                continue
            if skip_lo > lo:
                out += self._stretch(lo, skip_lo - 1, count)
            lo = skip_hi + 1
        return out + self._stretch(lo, None, count)

    def _stretch(
        self, since: int, until: int | None, count: bool
    ) -> list[tuple[str, int, int | None]]:
        if not count:
            return [("read", since, until)]
        a = bisect.bisect_left(self._sorted, since)
        b = len(self._sorted) if until is None else bisect.bisect_right(self._sorted, until)
        ms = self._sorted[a:b]
        out: list[tuple[str, int, int | None]] = []
        cursor = since
        i = 0
        while i < len(ms):
            j = min(i + PART_RECORDS, len(ms)) - 1
            while j + 1 < len(ms) and ms[j + 1] == ms[j]:
                j += 1  # one millisecond stays in one part
            k = i
            while k < j and ms[k + 1] - ms[k] <= GAP_MS:
                k += 1  # stop the part at a long gap
            if ms[i] > cursor:
                out.append(("read", cursor, ms[i] - 1))
            # a bounded stretch's last part reaches its end (it is bounded by a skipped range)
            nxt = ms[k + 1] if k + 1 < len(ms) else (None if until is None else until + 1)
            hi = ms[k] if nxt is None or nxt - ms[k] > GAP_MS else nxt - 1
            out.append(("count", ms[i], hi))
            cursor = hi + 1
            i = k + 1
        if until is None or cursor <= until:
            out.append(("read", cursor, until))
        return out


@dataclass
class WindowStats:
    count_calls: int = 0  # count checks (each also a search page)
    verified: int = 0  # our writes confirmed by count, not read back
    window_ms: int = 0  # span of the counted parts: where the documented blind spot lies
    newest_ms: int | None = None  # the newest of our writes a count confirmed


PageFn = Callable[[int, int | None, int], Awaitable[dict[str, Any]]]
ReadFn = Callable[[int, int | None, dict[str, Any] | None], AsyncIterator[dict[str, Any]]]


def worth_splitting(total: int, unexplained: int) -> bool:
    """Splitting costs about 2 counts per level and a leaf read per unexplained record;
    reading costs a page per 200 records."""
    if total <= LEAF or unexplained == 0:
        return False
    depth = max(1, math.ceil(math.log2(total / LEAF)))
    return unexplained * (2 * depth + LEAF // PAGE) < math.ceil(total / PAGE) - 1


async def checked_records(
    known: KnownTimes,
    since: int,
    page: PageFn,
    read: ReadFn,
    stats: WindowStats,
    skip: Sequence[tuple[int, int]] = (),
    count: bool = True,
) -> AsyncIterator[dict[str, Any]]:
    """Every record the window from ``since`` needs read (see the module docstring), newest
    stretch first, leaving out the ``skip`` ranges; ``count=False`` reads every stretch.
    ``page(lo, hi, after)`` is one search page over [lo, hi]; ``read(lo, hi, first_page)``
    reads a range whole (continuing after ``first_page`` if given)."""
    plan = known.parts(since, skip, count)
    stats.window_ms += sum(hi - lo + 1 for kind, lo, hi in plan if kind == "count" and hi)
    for kind, lo, hi in reversed(plan):
        if kind == "read":
            async for rec in read(lo, hi, None):
                yield rec
        else:
            assert hi is not None
            async for rec in _check(known, lo, hi, page, read, stats):
                yield rec


async def _check(
    known: KnownTimes, lo: int, hi: int, page: PageFn, read: ReadFn, stats: WindowStats
) -> AsyncIterator[dict[str, Any]]:
    expected = known.count(lo, hi)
    first = await page(lo, hi, 0)
    stats.count_calls += 1
    total = int(first.get("total") or 0)
    has_more = bool(((first.get("paging") or {}).get("next") or {}).get("after"))
    if total == expected and total < TRUSTED_TOTAL:
        stats.verified += expected
        newest = known.newest(lo, hi)
        if newest is not None:
            stats.newest_ms = max(stats.newest_ms or newest, newest)
        return
    if not has_more or lo >= hi or not worth_splitting(total, abs(total - expected)):
        async for rec in read(lo, hi, first):
            yield rec
        return
    mid = known.median(lo, hi)
    if mid is None or mid >= hi:
        mid = (lo + hi) // 2
    async for rec in _check(known, mid + 1, hi, page, read, stats):
        yield rec
    async for rec in _check(known, lo, mid, page, read, stats):
        yield rec
