"""Counting a large push's own writes while it runs, so the next refresh need not.

HubSpot moves a record's last-modified date on every write, ours included. The incremental
refresh therefore finds a large push's writes in its window and, to avoid reading them back,
counts them part by part (:mod:`spokesync.sync.own_window`): after a first sync of 500k
contacts, 100 searches at HubSpot's 5 a second before the next day's push could start.

Those counts need nothing the next day has. So while the push runs, a :class:`PushVerifier`
beside it collects HubSpot's ``updatedAt`` of every confirmed write and, once a part of them is
old enough for the search index to have caught up (:data:`LAG_MS`), counts it with one
search page (``total``; searches have their own budget of 5 a second, not the push's
ten-second one). A part whose ``total`` equals the writes we know landed in it holds nothing
anyone else modified; the next refresh skips it (:mod:`spokesync.state.verified_ranges`). A
part that does not add up is left for the refresh, which counts, halves and reads it as
before; so are the parts written in the last ``LAG_MS`` of the run, when the run ends first.

Why a count that added up stays true: a modification always stamps the record with the time
it happens. Nothing can land in a stretch of the past later; a record of ours edited after the
count leaves the stretch for a later time, where the refresh reads it. The one condition is
that, when a part is counted, every modification stamped inside it is already in the search
index: hence counting only ``LAG_MS`` after the part's last millisecond, measured on HubSpot's
clock (the newest ``updatedAt`` plus the time since it arrived), not ours. What a count cannot
see is in docs/existing-portal.md ("Counting the push while it runs").
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from spokesync.changes import ConfirmedTap, ConfirmedWrite, PushSink
from spokesync.hubspot.client import ClientStats, counting_calls
from spokesync.state.verified_ranges import VerifiedRange
from spokesync.sync import own_window
from spokesync.sync.refresh import modified_property, window_query

log = logging.getLogger(__name__)

# How long after a part's last millisecond it is counted. HubSpot documents that new and
# updated records take "a few moments" to appear in search; integrators report up to about
# 30 s. Twice that (see docs/existing-portal.md for the evidence and what it costs).
LAG_MS = 60_000
IDLE_S = 1.0  # longest sleep between looks at the confirmed writes


def wanted(records_changed: int) -> bool:
    """Only pushes the next refresh would count (larger than it reads back whole)."""
    return records_changed > own_window.READBACK_LIMIT


def epoch_ms(value: str) -> int | None:
    """HubSpot's ``updatedAt`` (ISO 8601 or epoch ms) as epoch ms."""
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return round(stamp.timestamp() * 1000)


def cut_ready(times: list[int], cutoff: int, done: bool) -> tuple[list[tuple[int, int, int]], int]:
    """Parts ``(lo, hi, records)`` at the head of the sorted ``times`` that are final and old
    enough to count (``hi ≤ cutoff``), and how many of ``times`` they hold.

    Cut as the refresh cuts (:meth:`KnownTimes.parts`): at most ``PART_RECORDS`` writes, never
    inside one millisecond, never across a gap of over ``GAP_MS``; a part reaches up to the
    next write's millisecond (so consecutive parts tile the push), which must be known, unless
    the writes are ``done``."""
    out: list[tuple[int, int, int]] = []
    i, n = 0, len(times)
    while i < n and times[i] <= cutoff:
        j = min(i + own_window.PART_RECORDS, n) - 1
        while j + 1 < n and times[j + 1] == times[j]:
            j += 1  # one millisecond stays in one part
        k = i
        while k < j and times[k + 1] - times[k] <= own_window.GAP_MS:
            k += 1  # stop the part at a long gap
        nxt = times[k + 1] if k + 1 < n else None
        if nxt is None and not done:
            break  # the part's end is not known yet
        hi = times[k] if nxt is None or nxt - times[k] > own_window.GAP_MS else nxt - 1
        if hi > cutoff:
            break
        out.append((times[i], hi, k + 1 - i))
        i = k + 1
    return out, i


@dataclass
class VerifyReport:
    """What the counts during one push proved."""

    counts: int = 0  # search calls, one per part
    parts_unverified: int = 0  # parts that did not add up (left to the refresh)
    records_verified: int = 0  # our writes in the ranges proved
    records_left: int = 0  # our writes the next refresh still has to count
    ranges: list[VerifiedRange] = field(default_factory=list)
    error: str | None = None  # why counting stopped early (the push is unaffected)

    def line(self) -> str:
        """One line for the sync summary."""
        text = (
            f"{self.counts:,} parts counted beside the push, {self.records_verified:,} "
            f"records proved, {self.records_left:,} left to the next refresh"
        )
        return text + (f" (stopped: {self.error})" if self.error else "")

    def as_metadata(self) -> dict[str, int | str]:
        meta: dict[str, int | str] = {
            "own_writes_counts": self.counts,
            "own_writes_verified": self.records_verified,
            "own_writes_left": self.records_left,
            "own_writes_parts_unverified": self.parts_unverified,
        }
        if self.error:
            meta["own_writes_count_error"] = self.error
        return meta


class PushVerifier:
    """Counts one push's confirmed writes part by part while it runs (module docstring).

    ``watch(sink)`` wraps the push's sink; :meth:`start` before the push, :meth:`writes_done`
    after it, :meth:`close` when counting may go on no longer (``stop``: an event that ends it
    early, e.g. every mapping's push is over); :meth:`abort` on failure."""

    def __init__(
        self,
        client: Any,
        object_type: str,
        run_id: str,
        *,
        lag_ms: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.object_type = object_type
        self.run_id = run_id
        self.lag_ms = LAG_MS if lag_ms is None else lag_ms
        self.report = VerifyReport()
        self._clock = clock
        self._prop = modified_property(object_type)
        self._incoming: list[int] = []
        self._open: list[int] = []  # sorted, not yet in a part
        self._queue: list[tuple[int, int, int]] = []  # parts cut, not counted yet
        self._counted_to: int | None = None  # the last counted part's hi
        self._server: tuple[int, float] | None = None  # (newest updatedAt, when it arrived)
        self._done = False
        self._stopping = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._calls = ClientStats()

    # -- the push's side ---------------------------------------------------------------------

    def watch(self, sink: PushSink) -> PushSink:
        return ConfirmedTap(sink, self.saw)

    def saw(self, writes: list[ConfirmedWrite]) -> None:
        """Confirmed writes (on the event loop, as the push reports them)."""
        last: tuple[str, int | None] = ("", None)
        for w in writes:
            if not w.updated_at:
                continue
            if w.updated_at != last[0]:  # a batch shares one stamp, usually
                last = (w.updated_at, epoch_ms(w.updated_at))
            ms = last[1]
            if ms is None:
                continue
            self._incoming.append(ms)
            if self._server is None or ms > self._server[0]:
                self._server = (ms, self._clock())
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def writes_done(self) -> None:
        """The push is over: no more writes will be confirmed."""
        self._done = True
        self._wake.set()

    async def close(self, stop: asyncio.Event | None = None) -> VerifyReport:
        """Count until every part is decided or ``stop`` is set (at once when it is None or
        set already: then only the parts old enough now are counted); the report."""
        task = self._task
        if task is not None:
            if stop is not None and not stop.is_set():
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
            self._stopping = True
            self._wake.set()
            await task
        self.report.records_left += len(self._open) + len(self._incoming)
        self.report.records_left += sum(records for _, _, records in self._queue)
        self._open, self._incoming, self._queue = [], [], []
        return self.report

    def abort(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    # -- counting ------------------------------------------------------------------------------

    def _server_now(self) -> int | None:
        """HubSpot's clock, estimated from the newest ``updatedAt`` seen (never ahead of it)."""
        if self._server is None:
            return None
        ms, at = self._server
        return ms + int((self._clock() - at) * 1000)

    def _absorb(self) -> None:
        if not self._incoming:
            return
        new, self._incoming = self._incoming, []
        if self._counted_to is not None:
            late = [m for m in new if m <= self._counted_to]
            for m in late:  # confirmed after its part was counted: that count proves nothing
                self._forget(m)
            self.report.records_left += len(late)
            new = [m for m in new if m > self._counted_to]
        self._open.extend(new)
        self._open.sort()

    def _forget(self, ms: int) -> None:
        ranges = self.report.ranges
        i = bisect.bisect_right([r.lo_ms for r in ranges], ms) - 1
        if i >= 0 and ranges[i].hi_ms >= ms:
            gone = ranges.pop(i)
            self.report.records_verified -= gone.records
            self.report.records_left += gone.records
            self.report.parts_unverified += 1

    async def _run(self) -> None:
        with counting_calls() as self._calls:  # this task's calls only
            await self._loop()

    async def _loop(self) -> None:
        try:
            while True:
                stopping = self._stopping  # seen before this pass: it is the last one
                self._absorb()
                now = self._server_now()
                if now is not None:
                    parts, used = cut_ready(self._open, now - self.lag_ms, self._done)
                    del self._open[:used]
                    if parts:
                        self._counted_to = parts[-1][1]  # later writes below it are late
                        self._queue += parts
                    while self._queue:
                        await self._count(*self._queue[0])
                        del self._queue[0]
                        self._absorb()
                if stopping or (self._done and not self._open and not self._incoming):
                    return
                if self._stopping:
                    continue  # one more pass, over what arrived meanwhile
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._idle_s())
                self._wake.clear()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never the push's failure: the refresh counts what is left
            self.report.error = f"{type(exc).__name__}: {exc}"
            log.warning("counting the %s push's writes stopped: %s", self.object_type, exc)

    def _idle_s(self) -> float:
        """Until the oldest open write is old enough, at most :data:`IDLE_S`."""
        now = self._server_now()
        if not self._open or now is None:
            return IDLE_S
        return min(IDLE_S, max(0.05, (self._open[0] + self.lag_ms - now) / 1000))

    async def _count(self, lo: int, hi: int, records: int) -> None:
        limiter = getattr(self.client, "limiter", None)
        if limiter is not None:  # wait outside the limiter's queue: writes never wait on us
            while (wait := limiter.delay(search=True)) > 0:
                await asyncio.sleep(wait)
        self.report.counts += 1
        page = await self.client.search(
            self.object_type,
            window_query(self._prop, lo, hi, None, [self._prop], 1, 0),
            request_id=f"{self.run_id}-verify-{self.object_type}-{self.report.counts}",
        )
        if self._calls.rate_limited:
            # Another client spends the portal's search budget: a 429 holds every request,
            # the push's writes too, so the refresh counts the rest instead.
            raise _SearchLimited("a search was rate limited (429): counting stopped")
        total = int(page.get("total") or 0)
        if total == records and total < own_window.TRUSTED_TOTAL:
            self.report.ranges.append(VerifiedRange(lo, hi, records))
            self.report.records_verified += records
        else:
            self.report.parts_unverified += 1
            self.report.records_left += records


class _SearchLimited(Exception):
    pass
