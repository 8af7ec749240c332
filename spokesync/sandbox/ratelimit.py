"""HubSpot's rate limits (reference §4): a rolling ten-second bucket per token, a daily bucket per
portal and the search API's own 5-per-second bucket. Decisions are made synchronously (no await
between check and count), so N+1 concurrent requests in a window get exactly N through."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

TEN_SECONDS = 10.0
SEARCH_WINDOW = 1.0


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    policy: str | None  # TEN_SECONDLY_ROLLING | DAILY | SECONDLY (search) when refused
    headers: dict[str, str]
    retry_after_s: int = 0


class RateLimiter:
    def __init__(
        self,
        *,
        per_ten_seconds: int = 190,
        daily: int = 1_000_000,
        search_per_second: int = 5,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.per_ten_seconds = per_ten_seconds
        self.daily = daily
        self.search_per_second = search_per_second
        self._clock = clock
        self._wall = wall_clock
        self._windows: dict[str, deque[float]] = {}
        self._search: deque[float] = deque()
        self._day = self._wall().date()
        self._daily_used = 0

    def reset(self) -> None:
        self._windows.clear()
        self._search.clear()
        self._daily_used = 0

    def _roll_day(self) -> None:
        today = self._wall().date()
        if today != self._day:
            self._day, self._daily_used = today, 0

    def _seconds_to_midnight(self) -> int:
        now = self._wall()
        tomorrow = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), dt.UTC)
        return max(1, math.ceil((tomorrow - now).total_seconds()))

    def _daily_headers(self) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Daily": str(self.daily),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.daily - self._daily_used)),
        }

    def check(self, token_key: str, *, search: bool) -> Decision:
        """Count one request, or refuse it. Search is exempt from the ten-second bucket."""
        self._roll_day()
        now = self._clock()
        if self._daily_used >= self.daily:
            return Decision(False, "DAILY", self._daily_headers(), self._seconds_to_midnight())
        if search:
            window = self._search
            while window and window[0] <= now - SEARCH_WINDOW:
                window.popleft()
            if len(window) >= self.search_per_second:
                wait = math.ceil(window[0] + SEARCH_WINDOW - now) or 1
                return Decision(False, "SECONDLY", self._daily_headers(), wait)
            window.append(now)
            self._daily_used += 1
            return Decision(True, None, self._daily_headers())
        window = self._windows.setdefault(token_key, deque())
        while window and window[0] <= now - TEN_SECONDS:
            window.popleft()
        if len(window) >= self.per_ten_seconds:
            wait = max(1, math.ceil(window[0] + TEN_SECONDS - now))
            return Decision(False, "TEN_SECONDLY_ROLLING", self._burst_headers(0), wait)
        window.append(now)
        self._daily_used += 1
        return Decision(True, None, self._burst_headers(self.per_ten_seconds - len(window)))

    def _burst_headers(self, remaining: int) -> dict[str, str]:
        return {
            **self._daily_headers(),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(TEN_SECONDS * 1000)),
            "X-HubSpot-RateLimit-Max": str(self.per_ten_seconds),
            "X-HubSpot-RateLimit-Remaining": str(remaining),
        }

    def snapshot(self) -> dict[str, int]:
        self._roll_day()
        return {
            "daily_used": self._daily_used,
            "daily_limit": self.daily,
            "per_ten_seconds": self.per_ten_seconds,
        }
