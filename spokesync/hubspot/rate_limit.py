"""Client-side rate limiting: HubSpot's limits treated as a budget, not an error.

HubSpot counts requests per app over a *rolling* ten-second window (``TEN_SECONDLY_ROLLING``),
per account per day (``DAILY``), and search separately at five per second. A classic refilling
token bucket can let through twice its capacity within one rolling window, so each window here
is a sliding log of send times: a request may go when fewer than ``limit`` requests were sent in
the last ``interval`` seconds (plus a small time slack for network jitter). That is the bucket
refilling exactly as HubSpot's window rolls, so the full budget is usable with no 429s.

The ``X-HubSpot-RateLimit-*`` response headers correct the local view: ``-Max`` and
``-Interval-Milliseconds`` replace the configured limit and window (so a portal's higher limit is
used automatically), ``-Remaining`` below our own estimate means another client shares the app's
budget (we count the difference as spent), ``-Daily-Remaining`` sets the daily budget.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import time
from collections.abc import Awaitable, Callable, Mapping

from spokesync.hubspot.errors import DailyLimitReached

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


AUTO_START_LIMIT = 100
"""Ten-second limit assumed before the first response when following the headers (the lowest
tier's, so a fresh run never overshoots)."""


class RollingWindow:
    """At most ``limit`` events in any ``interval_s`` (+ ``slack_s``) window: a sliding log.

    The log is a sorted list of event times. An event is first counted at its send time and
    later *settled* to the time its response arrived: HubSpot saw the request somewhere in
    between, so counting it until ``response + interval`` is safe however slow the network or
    the server was, while the slot is freed as soon as that is certain.
    """

    def __init__(self, limit: int, interval_s: float, slack_s: float = 0.0) -> None:
        if limit < 1 or interval_s <= 0:
            raise ValueError(f"limit must be ≥ 1 and interval > 0, got {limit} / {interval_s}")
        self.limit = limit
        self.interval_s = interval_s
        self.slack_s = slack_s
        self._log: list[float] = []

    def _prune(self, now: float) -> None:
        cut = bisect.bisect_right(self._log, now - self.interval_s - self.slack_s)
        if cut:
            del self._log[:cut]

    def used(self, now: float) -> int:
        """Events counted in the window ending at ``now``."""
        self._prune(now)
        return len(self._log)

    def delay(self, now: float) -> float:
        """Seconds until one more event fits (0 when it fits now)."""
        self._prune(now)
        excess = len(self._log) - self.limit
        if excess < 0:
            return 0.0
        # The (excess+1)-th oldest event must leave the window first; +1 µs so float
        # rounding never lands the new event on the window's edge.
        return max(0.0, self._log[excess] + self.interval_s + self.slack_s - now + 1e-6)

    def record(self, now: float, count: int = 1) -> None:
        for _ in range(count):
            bisect.insort(self._log, now)

    def settle(self, sent_at: float, now: float) -> None:
        """Move one event counted at ``sent_at`` to ``now`` (its response time)."""
        i = bisect.bisect_left(self._log, sent_at)
        if i < len(self._log) and self._log[i] == sent_at:
            del self._log[i]
            bisect.insort(self._log, now)


class RateLimiter:
    """The ten-second window, the daily budget and the search bucket, shared by all requests.

    ``per_interval`` is the most this client may use per window (a portal allows 100 on
    Free/Starter, 190 on Pro/Enterprise, 250 with the limit-increase pack). The headers' ``-Max``
    can lower it (the portal allows less) but never raise it, so an operator can give a sync
    only part of an app's budget. ``per_interval=None`` follows ``-Max`` both ways, starting
    at :data:`AUTO_START_LIMIT` until the first response. ``margin`` requests are kept in
    reserve. ``clock``/``sleep`` are injectable so tests run on virtual time.
    """

    def __init__(
        self,
        per_interval: int | None = 190,
        interval_s: float = 10.0,
        *,
        margin: int | None = None,
        slack_s: float = 0.05,
        daily_budget: int | None = None,
        daily_reserve: int = 0,
        search_per_second: int = 5,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.margin = margin
        self.slack_s = slack_s
        self._clock = clock
        self._sleep = sleep
        self.configured_limit = per_interval  # None: follow the portal's -Max header
        start = per_interval if per_interval is not None else AUTO_START_LIMIT
        self.portal_limit = start
        self.window = RollingWindow(self._effective(start), interval_s, slack_s)
        self.search = RollingWindow(max(1, search_per_second), 1.0, slack_s)
        self.daily_remaining: int | None = daily_budget
        # The operator's own cap for this run, counted down separately: HubSpot's
        # Daily-Remaining header can only lower what is left, never lift the cap.
        self.budget_remaining: int | None = daily_budget
        self.daily_reserve = daily_reserve
        # Set by a 429 DAILY: the portal's day is spent for the rest of the run, whatever the
        # Daily-Remaining header of an answer to a request sent before it says.
        self.daily_spent = False
        self.blocked_until = 0.0
        self.waited_s = 0.0
        self._lock = asyncio.Lock()

    def _effective(self, limit: int) -> int:
        margin = self.margin if self.margin is not None else max(1, math.ceil(limit * 0.01))
        return max(1, limit - margin)

    @property
    def limit(self) -> int:
        """Requests allowed per window after the safety margin."""
        return self.window.limit

    def delay(self, *, search: bool = False) -> float:
        """Seconds the next request would have to wait now."""
        now = self._clock()
        bucket = self.search if search else self.window
        return max(self.blocked_until - now, bucket.delay(now), 0.0)

    async def acquire(self, *, search: bool = False) -> float:
        """Wait until one request fits every budget, count it and return its send time
        (pass that to :meth:`settle` when the response arrives).

        Raises :class:`DailyLimitReached` instead of waiting when the daily budget is spent
        (waiting for midnight in the portal's time zone is never the right thing in a run).
        """
        async with self._lock:  # FIFO: requests leave in the order they asked
            while True:
                if self.daily_remaining is not None and self.daily_remaining <= self.daily_reserve:
                    raise DailyLimitReached(
                        f"HubSpot daily API budget exhausted ({self.daily_remaining} calls left,"
                        f" reserve {self.daily_reserve}); stopping instead of waiting for the reset"
                    )
                wait = self.delay(search=search)
                if wait <= 0:
                    break
                self.waited_s += wait
                await self._sleep(wait)
            now = self._clock()
            (self.search if search else self.window).record(now)
            if self.daily_remaining is not None:
                self.daily_remaining -= 1
            if self.budget_remaining is not None:
                self.budget_remaining -= 1
            return now

    def spend_daily(self) -> None:
        """HubSpot answered 429 DAILY: no further request in this run (a run never waits for
        the portal's midnight reset). Requests still in flight were sent before it, so the
        counts their answers carry cannot lift it."""
        self.daily_spent = True
        self.daily_remaining = 0

    def settle(self, sent_at: float, *, search: bool = False) -> None:
        """The response to a request sent at ``sent_at`` arrived (or the attempt failed) now."""
        (self.search if search else self.window).settle(sent_at, self._clock())

    def block_for(self, seconds: float) -> None:
        """Hold every request for ``seconds`` (after a 429: ``Retry-After`` or the policy window)."""
        self.blocked_until = max(self.blocked_until, self._clock() + max(0.0, seconds))

    def update_from_headers(self, headers: Mapping[str, str]) -> None:
        """Correct the budgets from HubSpot's ``X-HubSpot-RateLimit-*`` response headers."""
        h = {k.lower(): v for k, v in headers.items()}
        interval_ms = _int(h.get("x-hubspot-ratelimit-interval-milliseconds"))
        if interval_ms and interval_ms > 0:
            self.window.interval_s = interval_ms / 1000
        max_ = _int(h.get("x-hubspot-ratelimit-max"))
        if max_ and max_ > 0:
            self.portal_limit = max_
            allowed = max_ if self.configured_limit is None else min(max_, self.configured_limit)
            self.window.limit = self._effective(allowed)
        remaining = _int(h.get("x-hubspot-ratelimit-remaining"))
        if remaining is not None and max_:
            now = self._clock()
            # Server-side use (max - remaining) above ours: someone else spends this budget.
            server_used = max_ - remaining
            foreign = server_used - self.window.used(now)
            if foreign > 0:
                self.window.record(now, foreign)
        daily_remaining = _int(h.get("x-hubspot-ratelimit-daily-remaining"))
        if daily_remaining is not None and not self.daily_spent:
            # HubSpot's count is authoritative (it also sees the midnight reset), within the
            # operator's budget for this run.
            self.daily_remaining = (
                daily_remaining
                if self.budget_remaining is None
                else min(daily_remaining, self.budget_remaining)
            )


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None
