"""Counting a push's own writes while it runs (spokesync.sync.verify_push): which parts are
cut when, on HubSpot's clock, and what a count proves. A fake search answers ``total`` over
(id, last-modified ms) records; the clock is a variable. Counts worked out by hand."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from spokesync.changes import ConfirmedWrite
from spokesync.state.verified_ranges import VerifiedRange
from spokesync.sync import own_window, verify_push
from spokesync.sync.verify_push import PushVerifier, cut_ready, epoch_ms
from tests.sync.test_own_window import FakeSearch


def _batches(n: int, size: int = 100, start: int = 1_000_000) -> list[list[int]]:
    """``n`` batches of ``size``, batch b stamped at start + b * 1000 ms."""
    return [[start + b * 1000] * size for b in range(n)]


def test_parts_are_cut_when_final_and_old_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(own_window, "PART_RECORDS", 250)
    times = [t for batch in _batches(10) for t in batch]
    # 250 reached inside the third millisecond: it stays whole; a part reaches up to the next
    # write's millisecond; the last part waits for its end while the push goes on
    assert cut_ready(times, 10**9, done=False) == (
        [
            (1_000_000, 1_002_999, 300),
            (1_003_000, 1_005_999, 300),
            (1_006_000, 1_008_999, 300),
        ],
        900,
    )
    assert cut_ready(times, 10**9, done=True)[0][-1] == (1_009_000, 1_009_000, 100)
    # only parts whose last millisecond is at or before the cutoff
    assert cut_ready(times, 1_005_999, done=True) == (
        [(1_000_000, 1_002_999, 300), (1_003_000, 1_005_999, 300)],
        600,
    )
    assert cut_ready(times, 1_005_998, done=True) == ([(1_000_000, 1_002_999, 300)], 300)
    assert cut_ready(times, 999_999, done=True) == ([], 0)
    # a gap of over GAP_MS ends a part at its own last write; the gap is not in any part
    gap = [1_000_000] * 10 + [1_000_000 + own_window.GAP_MS + 1] * 10
    assert cut_ready(gap, 10**9, done=True) == (
        [(1_000_000, 1_000_000, 10), (1_060_001, 1_060_001, 10)],
        20,
    )


def test_epoch_ms_reads_both_of_hubspots_forms() -> None:
    assert epoch_ms("1790000000123") == 1_790_000_000_123
    assert epoch_ms("2026-12-02T15:00:00.250Z") == int(
        dt.datetime(2026, 12, 2, 15, 0, 0, 250_000, dt.UTC).timestamp() * 1000
    )
    assert epoch_ms("not a date") is None


def _writes(times: list[int], first_id: int) -> list[ConfirmedWrite]:
    return [
        ConfirmedWrite(
            object_type="companies",
            external_id=f"ACC-{first_id + i}",
            hubspot_id=str(first_id + i),
            properties={},
            as_of=dt.date(2026, 12, 2),
            created=True,
            updated_at=str(ms),
        )
        for i, ms in enumerate(times)
    ]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _run(
    portal: dict[str, int],
    batches: list[list[int]],
    *,
    lag_ms: int,
    advance_s: float,
    late: list[int] | None = None,
) -> tuple[verify_push.VerifyReport, int]:
    """A push confirming ``batches`` (ids from 10,000 on, as in ``portal``); then the clock
    moves ``advance_s`` on and the verifier is closed; ``late``: times confirmed after."""
    client = FakeSearch(portal)
    clock = Clock()

    async def go() -> verify_push.VerifyReport:
        verifier = PushVerifier(client, "companies", "t", lag_ms=lag_ms, clock=clock)
        verifier.start()
        n = 10_000
        for batch in batches:
            verifier.saw(_writes(batch, n))
            n += len(batch)
            await asyncio.sleep(0.01)  # the verifier looks between batches
        verifier.writes_done()
        clock.now += advance_s
        if late:
            verifier.saw(_writes(late, 90_000))
        return await verifier.close()

    report = asyncio.run(go())
    return report, client.calls


def test_a_push_nobody_touched_is_proved_part_by_part(monkeypatch: pytest.MonkeyPatch) -> None:
    """10 batches of 100, parts of 200, no index lag: 5 counts, 5 ranges tiling the push."""
    monkeypatch.setattr(own_window, "PART_RECORDS", 200)
    batches = _batches(10)
    portal = {str(10_000 + i): ms for i, ms in enumerate(t for b in batches for t in b)}
    report, calls = _run(portal, batches, lag_ms=0, advance_s=0)
    assert calls == report.counts == 5
    assert report.ranges == [
        VerifiedRange(1_000_000, 1_001_999, 200),
        VerifiedRange(1_002_000, 1_003_999, 200),
        VerifiedRange(1_004_000, 1_005_999, 200),
        VerifiedRange(1_006_000, 1_007_999, 200),
        VerifiedRange(1_008_000, 1_009_000, 200),
    ]
    assert (report.records_verified, report.records_left, report.parts_unverified) == (
        1000,
        0,
        0,
    )


def test_a_part_someone_else_wrote_into_is_left_to_the_refresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A record created at 1_002_500 (in the second part) and one of ours from the fourth
    part edited at 1_009_000 (now in the last): 5 counts, parts 2, 4 and 5 do not add up."""
    monkeypatch.setattr(own_window, "PART_RECORDS", 200)
    batches = _batches(10)
    portal = {str(10_000 + i): ms for i, ms in enumerate(t for b in batches for t in b)}
    portal["99"] = 1_002_500
    portal["10650"] = 1_009_000
    report, calls = _run(portal, batches, lag_ms=0, advance_s=0)
    assert calls == report.counts == 5
    assert [(r.lo_ms, r.hi_ms) for r in report.ranges] == [
        (1_000_000, 1_001_999),
        (1_004_000, 1_005_999),
    ]
    assert (report.records_verified, report.records_left, report.parts_unverified) == (
        400,
        600,
        3,
    )


def test_nothing_is_counted_before_the_index_lag_has_passed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a 60 s lag on HubSpot's clock (the newest ``updatedAt`` plus the time since it
    arrived): closed 55 s after the last write, only the parts ending 60 s before HubSpot's
    now (1_009_000 + 55_000 - 60_000 = 1_004_000) are counted: two of five; the rest is left."""
    monkeypatch.setattr(own_window, "PART_RECORDS", 200)
    batches = _batches(10)
    portal = {str(10_000 + i): ms for i, ms in enumerate(t for b in batches for t in b)}
    report, calls = _run(portal, batches, lag_ms=60_000, advance_s=55)
    assert calls == 2
    assert [(r.lo_ms, r.hi_ms) for r in report.ranges] == [
        (1_000_000, 1_001_999),
        (1_002_000, 1_003_999),
    ]
    assert (report.records_verified, report.records_left) == (400, 600)
    report, calls = _run(portal, batches, lag_ms=60_000, advance_s=61)
    assert (calls, report.records_verified, report.records_left) == (5, 1000, 0)


def test_a_write_confirmed_after_its_part_was_proved_voids_the_proof(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A confirmation stamped 1_000_500 arrives after the first part was counted: whatever
    that count matched, it was not what we know now; the range is dropped (its 200 and the
    late write are left to the refresh)."""
    monkeypatch.setattr(own_window, "PART_RECORDS", 200)
    batches = _batches(10)
    portal = {str(10_000 + i): ms for i, ms in enumerate(t for b in batches for t in b)}
    report, _ = _run(portal, batches, lag_ms=0, advance_s=0, late=[1_000_500])
    assert [r.lo_ms for r in report.ranges] == [1_002_000, 1_004_000, 1_006_000, 1_008_000]
    assert (report.records_verified, report.records_left) == (800, 201)


def test_a_failing_search_stops_the_counting_not_the_push() -> None:
    class Failing:
        async def search(self, *args: object, **kwargs: object) -> dict:
            raise RuntimeError("HubSpot is down")

    async def go() -> verify_push.VerifyReport:
        verifier = PushVerifier(Failing(), "companies", "t", lag_ms=0)
        verifier.start()
        verifier.saw(_writes([1_000_000] * 10, 10_000))
        verifier.writes_done()
        return await verifier.close()

    report = asyncio.run(go())
    assert report.error == "RuntimeError: HubSpot is down"
    assert (report.counts, report.ranges, report.records_left) == (1, [], 10)


def test_a_rate_limited_search_stops_the_counting() -> None:
    """Another client spends the portal's search budget: HubSpot answers 429 and the client
    holds every request (the push's writes too) before retrying. The counting takes that
    one count's answer and stops; the second part is left to the refresh."""
    import httpx

    from spokesync.hubspot.client import HubSpotClient

    answers = [
        httpx.Response(
            429,
            json={
                "status": "error",
                "message": "You have reached your secondly limit.",
                "category": "RATE_LIMITS",
                "policyName": "SECONDLY",
            },
            headers={"Retry-After": "0"},
        ),  # fmt: skip
        httpx.Response(200, json={"total": 10, "results": []}),
    ]
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return answers.pop(0)

    async def go() -> verify_push.VerifyReport:
        client = HubSpotClient("http://hubspot.test", "t", transport=httpx.MockTransport(handler))
        async with client:
            verifier = PushVerifier(client, "companies", "t", lag_ms=0)
            verifier.start()
            verifier.saw(_writes([1_000_000] * 10, 10_000))
            verifier.saw(_writes([1_001_000] * 10, 20_000))
            verifier.writes_done()
            return await verifier.close()

    report = asyncio.run(go())
    assert len(seen) == 2  # the 429 and its retry, then no more
    assert report.error is not None and "429" in report.error
    assert (report.counts, report.ranges, report.records_left) == (1, [], 20)
