"""The rolling-window limiter, header correction, the search bucket and steady-state pushing."""

from __future__ import annotations

import asyncio
import bisect
import math

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spokesync.hubspot.errors import DailyLimitReached
from spokesync.hubspot.push import PushConfig, push_changes
from spokesync.hubspot.rate_limit import RateLimiter, RollingWindow

from .fakes import FakeClock, FakeHubSpot, MemorySink, changes, make_client, ten_secondly_429


def max_in_any_window(times: list[float], interval: float) -> int:
    """Most events inside any half-open window (t - interval, t], as HubSpot counts."""
    times = sorted(times)
    return max(
        (i + 1 - bisect.bisect_right(times, t - interval) for i, t in enumerate(times)), default=0
    )


@settings(max_examples=60, deadline=None)
@given(
    limit=st.integers(1, 30),
    gaps=st.lists(st.floats(0, 3, allow_nan=False), min_size=1, max_size=120),
)
def test_rolling_window_never_exceeds_its_limit(limit: int, gaps: list[float]) -> None:
    window = RollingWindow(limit, 10.0)
    now, sent = 0.0, []
    for gap in gaps:
        now += gap
        now += window.delay(now)
        window.record(now)
        sent.append(now)
    assert max_in_any_window(sent, 10.0) <= limit


def test_limiter_sends_bursts_of_the_limit_per_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(100, 10.0, margin=0, slack_s=0, clock=clock, sleep=clock.sleep)

    async def go() -> list[float]:
        stamps = []
        for _ in range(250):
            await limiter.acquire()
            stamps.append(clock.now - 1000.0)
        return stamps

    stamps = asyncio.run(go())
    assert stamps[:100] == [0.0] * 100
    assert stamps[100:200] == pytest.approx([10.0] * 100, abs=1e-5)
    assert stamps[200:] == pytest.approx([20.0] * 50, abs=1e-5)
    assert max_in_any_window(stamps, 10.0) == 100


def test_default_margin_keeps_one_percent_in_reserve() -> None:
    assert RateLimiter(100).limit == 99
    assert RateLimiter(190).limit == 188
    assert RateLimiter(250).limit == 247
    assert RateLimiter(190, margin=0).limit == 190
    assert RateLimiter(1).limit == 1


def test_headers_correct_limit_window_foreign_use_and_daily_budget() -> None:
    clock = FakeClock()
    limiter = RateLimiter(190, 10.0, margin=0, clock=clock, sleep=clock.sleep)
    limiter.window.record(clock.now, 10)
    limiter.update_from_headers(
        {
            "X-HubSpot-RateLimit-Max": "100",
            "X-HubSpot-RateLimit-Remaining": "60",
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Daily-Remaining": "5000",
        }
    )
    assert limiter.limit == 100
    assert limiter.window.used(clock.now) == 40  # 10 ours + 30 spent by another client
    assert limiter.daily_remaining == 5000
    limiter.update_from_headers({"x-hubspot-ratelimit-interval-milliseconds": "1000"})
    assert limiter.window.interval_s == 1.0
    # A server that counts less than we do never loosens our own bookkeeping.
    limiter.update_from_headers(
        {"X-HubSpot-RateLimit-Max": "100", "X-HubSpot-RateLimit-Remaining": "99"}
    )
    assert limiter.window.used(clock.now) == 40


def test_configured_limit_is_a_ceiling_and_none_follows_the_portal() -> None:
    capped = RateLimiter(100, margin=0)
    capped.update_from_headers({"X-HubSpot-RateLimit-Max": "190"})
    assert capped.limit == 100 and capped.portal_limit == 190
    auto = RateLimiter(None, margin=0)
    assert auto.limit == 100  # until the first response
    auto.update_from_headers({"X-HubSpot-RateLimit-Max": "250"})
    assert auto.limit == 250
    auto.update_from_headers({"X-HubSpot-RateLimit-Max": "190"})
    assert auto.limit == 190


def test_daily_budget_exhausted_raises_instead_of_waiting() -> None:
    clock = FakeClock()
    limiter = RateLimiter(100, daily_budget=2, clock=clock, sleep=clock.sleep)

    async def go() -> None:
        await limiter.acquire()
        await limiter.acquire()
        await limiter.acquire()

    with pytest.raises(DailyLimitReached, match="daily API budget exhausted"):
        asyncio.run(go())
    assert clock.sleeps == []


def test_operator_budget_is_not_lifted_by_hubspots_daily_remaining() -> None:
    clock = FakeClock()
    limiter = RateLimiter(100, daily_budget=3, clock=clock, sleep=clock.sleep)

    async def go() -> None:
        for _ in range(4):
            await limiter.acquire()
            # The portal has plenty left; this run's budget still counts down.
            limiter.update_from_headers({"X-HubSpot-RateLimit-Daily-Remaining": "999000"})

    with pytest.raises(DailyLimitReached):
        asyncio.run(go())
    assert limiter.budget_remaining == 0
    # ... and the portal's count still wins when it is the smaller one.
    portal_low = RateLimiter(100, daily_budget=500)
    portal_low.update_from_headers({"X-HubSpot-RateLimit-Daily-Remaining": "7"})
    assert portal_low.daily_remaining == 7


def test_a_429_daily_is_not_lifted_by_answers_to_requests_sent_before_it() -> None:
    """Mappings overlap (one pushes while the next refreshes): an upsert answered after the
    refresh's 429 DAILY carries the Daily-Remaining HubSpot counted when it took the upsert.
    The run must still stop every later call, as the daily limit is the portal's."""
    clock = FakeClock()
    limiter = RateLimiter(100, clock=clock, sleep=clock.sleep)
    limiter.update_from_headers({"X-HubSpot-RateLimit-Daily-Remaining": "250000"})
    limiter.spend_daily()
    limiter.update_from_headers({"X-HubSpot-RateLimit-Daily-Remaining": "249998"})
    assert limiter.daily_remaining == 0
    with pytest.raises(DailyLimitReached, match="daily API budget exhausted"):
        asyncio.run(limiter.acquire())
    assert clock.sleeps == []


def test_search_bucket_is_separate_five_per_second() -> None:
    clock = FakeClock()
    limiter = RateLimiter(100, margin=0, slack_s=0, clock=clock, sleep=clock.sleep)

    async def go() -> list[float]:
        stamps = []
        for _ in range(12):
            await limiter.acquire(search=True)
            stamps.append(clock.now - 1000.0)
        return stamps

    stamps = asyncio.run(go())
    assert stamps == pytest.approx([0.0] * 5 + [1.0] * 5 + [2.0] * 2, abs=1e-5)
    assert limiter.window.used(clock.now) == 0


def test_block_for_holds_every_request() -> None:
    clock = FakeClock()
    limiter = RateLimiter(100, clock=clock, sleep=clock.sleep)
    limiter.block_for(4.5)

    async def go() -> None:
        await limiter.acquire()

    asyncio.run(go())
    assert clock.sleeps == [4.5]


class WindowEnforcingHubSpot(FakeHubSpot):
    """Answers 429 TEN_SECONDLY_ROLLING when a request exceeds ``limit`` per rolling 10 s."""

    def __init__(self, clock: FakeClock, limit: int) -> None:
        super().__init__()
        self.clock, self.limit, self.seen = clock, limit, []
        self.script = self.enforce

    def enforce(self, request: httpx.Request, n: int) -> httpx.Response | None:
        now = self.clock.now
        self.seen.append(now)
        in_window = sum(1 for t in self.seen if t > now - 10.0)
        remaining = self.limit - in_window
        self.headers = {
            "X-HubSpot-RateLimit-Max": str(self.limit),
            "X-HubSpot-RateLimit-Remaining": str(max(0, remaining)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        }
        return ten_secondly_429() if remaining < 0 else None


@pytest.mark.parametrize("configured", [100, 250])
def test_steady_state_push_uses_budget_with_zero_429s(configured: int) -> None:
    """Configured at (or above) the portal's 100/10 s: the headers bring us down, no 429s."""
    clock = FakeClock()
    fake = WindowEnforcingHubSpot(clock, limit=100)
    sink = MemorySink()
    n = 25_000

    async def go():
        async with make_client(fake, clock, per_interval=configured, margin=0) as client:
            return await push_changes(
                client,
                object_type="companies",
                id_property="external_id",
                changes=[changes(n)],
                sink=sink,
                run_id="r",
                config=PushConfig(concurrency=4),
            )

    report = asyncio.run(go())
    assert report.write_calls == math.ceil(n / 100) == 250
    assert report.records_ok == n
    if configured == 100:
        assert report.rate_limited == 0
        # 250 calls at 100 per 10 s: two full windows of waiting, no more.
        assert clock.now - 1000.0 == pytest.approx(20.0, abs=1e-3)
    else:
        # Over-configured: the first 429 (plus the Max header) corrects the limiter for good.
        assert report.rate_limited <= 1


def test_slot_is_held_until_response_time_plus_window() -> None:
    """A slow response keeps its slot longer: HubSpot may have counted it as late as that."""
    clock = FakeClock()
    limiter = RateLimiter(1, 10.0, margin=0, slack_s=0, clock=clock, sleep=clock.sleep)

    async def go() -> float:
        sent = await limiter.acquire()
        clock.now += 2.0  # the response takes 2 s
        limiter.settle(sent)
        await limiter.acquire()
        return clock.now - 1000.0

    assert asyncio.run(go()) == pytest.approx(12.0, abs=1e-5)
