"""The incremental refresh counts stretches only our own writes fill instead of reading them
back (spokesync.sync.own_window). A fake search holds (id, last-modified ms) per record and
answers HubSpot's search shape: ``total``, ``after`` paging, the 10,000 cap. Call counts are
worked out by hand from the parts and medians in each docstring."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from spokesync.sync import own_window
from spokesync.sync.own_window import KnownTimes, WindowStats
from spokesync.sync.refresh import _SearchState, modified_records

PROP = "hs_lastmodifieddate"
SINCE = 900_000


class FakeSearch:
    """``client.search`` over ``records`` (id -> ms): GTE/LTE/EQ on the modified date, GT on
    ``hs_object_id``, one ascending sort, ``limit``/``after`` and the 10,000-result cap."""

    def __init__(self, records: dict[str, int]) -> None:
        self.records = records
        self.calls = 0

    async def search(self, object_type: str, body: dict[str, Any], *, request_id: str) -> dict:
        self.calls += 1
        (group,) = body["filterGroups"]
        hits = list(self.records.items())
        for f in group["filters"]:
            value = int(f["value"])
            if f["propertyName"] == "hs_object_id":
                hits = [(i, m) for i, m in hits if int(i) > value]
                continue
            op = f["operator"]
            hits = [
                (i, m)
                for i, m in hits
                if (op == "GTE" and m >= value)
                or (op == "LTE" and m <= value)
                or (op == "EQ" and m == value)
            ]
        by_id = body["sorts"][0]["propertyName"] == "hs_object_id"
        hits.sort(key=lambda h: (int(h[0]),) if by_id else (h[1], int(h[0])))
        after, limit = int(body["after"]), int(body["limit"])
        assert after + limit <= 10_000, "paged past the 10,000 cap"
        page = hits[after : after + limit]
        answer: dict[str, Any] = {
            "total": len(hits),
            "results": [{"id": i, "properties": {PROP: str(m)}} for i, m in page],
        }
        if after + limit < len(hits):
            answer["paging"] = {"next": {"after": str(after + limit)}}
        return answer


def _push(batches: int, size: int = 100) -> dict[str, int]:
    """Our push: ``batches`` batches of ``size``, batch b confirmed at 1_000_000 + b*1000 ms."""
    return {str(10_000 + i): 1_000_000 + (i // size) * 1000 for i in range(batches * size)}


def _refresh(
    portal: dict[str, int],
    ours: dict[str, int],
    readback_limit: int = 0,
    verified: list[tuple[int, int]] | None = None,
) -> tuple[list[str], int, WindowStats]:
    client = FakeSearch(portal)
    stats = WindowStats()
    state = _SearchState()

    async def go() -> list[str]:
        records = modified_records(
            client,  # type: ignore[arg-type]
            "companies",
            [PROP],
            SINCE,
            run_id="t",
            state=state,
            own=(list(ours), list(ours.values())),
            stats=stats,
            readback_limit=readback_limit,
            verified=verified or (),
        )
        return [r["id"] async for r in records]

    read = asyncio.run(go())
    assert state.calls == client.calls
    return read, client.calls, stats


def test_parts_cut_at_part_size_long_gaps_and_never_inside_a_millisecond(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(own_window, "PART_RECORDS", 250)
    times = [1_000_000 + (i // 100) * 1000 for i in range(1000)]  # 10 batches, 100 per ms
    times += [2_000_000, 2_000_001]  # another push, 989 s later
    known = KnownTimes([str(i) for i in range(len(times))], times)
    assert known.parts(SINCE) == [
        ("read", 900_000, 999_999),
        ("count", 1_000_000, 1_002_999),  # 250 reached inside the third ms: it stays whole
        ("count", 1_003_000, 1_005_999),
        ("count", 1_006_000, 1_008_999),
        ("count", 1_009_000, 1_009_000),  # the gap to the next push is read, not counted
        ("read", 1_009_001, 1_999_999),
        ("count", 2_000_000, 2_000_001),
        ("read", 2_000_002, None),
    ]
    assert (known.count(1_000_000, 1_001_000), known.median(1_000_000, 1_009_000)) == (
        200,
        1_004_000,
    )


def test_a_push_nobody_touched_costs_one_count_per_part(monkeypatch: pytest.MonkeyPatch) -> None:
    """1,000 of ours, parts of 200 (two batches): the tail read, 5 counts, the head read.
    Reading them back would cost 5 pages and merge 1,000 records."""
    monkeypatch.setattr(own_window, "PART_RECORDS", 200)
    ours = _push(10)
    read, calls, stats = _refresh(dict(ours), ours)
    assert (read, calls, stats.count_calls, stats.verified) == ([], 7, 5, 1000)
    assert stats.newest_ms == 1_009_000


def test_people_editing_after_the_push_are_read_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """30 of ours edited after the push move to the tail: read there (one page); each part
    then counts 200 less what left it, which the tail read told us: no part is read."""
    monkeypatch.setattr(own_window, "PART_RECORDS", 200)
    ours = _push(10)
    portal = dict(ours)
    edited = [str(10_000 + i) for i in range(0, 1000, 33)][:30]
    for n, rid in enumerate(edited):
        portal[rid] = 2_000_000 + n
    read, calls, stats = _refresh(portal, ours)
    assert sorted(read) == sorted(edited)
    assert (calls, stats.count_calls, stats.verified) == (7, 5, 970)


def test_a_record_nobody_of_ours_wrote_inside_the_push_is_found_by_halving(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """10,000 of ours (100 batches, one part), one foreign edit at 1_030_500. Counts: the
    part (10,001 ≠ 10,000) → right half from the median 1_049_000 (5,000 = 5,000) → left
    (5,001) → its right half after 1_024_000 (2,501) → after 1_037_000 (1,200 = 1,200) →
    1_024_001..1_037_000 (1,301 ≠ 1,300; too few to split: read, 6 more pages) → the left
    quarter (2,500 = 2,500). 7 counts + 6 pages + tail + head = 15 calls, not 51 pages.
    (Parts of 10,000 and a ``total`` taken as exact at any size, to keep the numbers round.)"""
    monkeypatch.setattr(own_window, "PART_RECORDS", 10_000)
    monkeypatch.setattr(own_window, "TRUSTED_TOTAL", 10**9)
    ours = _push(100)
    portal = {**ours, "99": 1_030_500}
    read, calls, stats = _refresh(portal, ours)
    assert "99" in read and len(read) == 1301
    assert (calls, stats.count_calls) == (15, 7)
    assert stats.verified == 5000 + 1200 + 2500


def test_an_edit_after_our_write_to_a_later_part_of_the_push_is_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ours 10099 (batch 0) edited at the last batch's time: the last part (200 + 1) is read
    first, which moves 10099 there; the first part then counts 199 = 199."""
    monkeypatch.setattr(own_window, "PART_RECORDS", 200)
    ours = _push(10)
    portal = {**ours, "10099": 1_009_000}
    read, calls, stats = _refresh(portal, ours)
    assert "10099" in read and len(read) == 201
    assert (calls, stats.count_calls) == (8, 5)  # + the last part's second page


def test_a_count_at_or_past_the_cap_never_proves_a_part_clean(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HubSpot's ``total`` is not documented exact past 10,000: a part whose count reaches
    the trusted bound is read (here the bound is 1,000: 4 more pages after the count's)."""
    monkeypatch.setattr(own_window, "PART_RECORDS", 1000)
    monkeypatch.setattr(own_window, "TRUSTED_TOTAL", 1000)
    ours = _push(10)
    read, calls, stats = _refresh(dict(ours), ours)
    assert (len(read), calls, stats.count_calls, stats.verified) == (1000, 7, 1, 0)


def test_the_documented_blind_spot_an_edit_within_the_same_part() -> None:
    """An edit to one of ours landing in the part of our own write keeps every count: the
    refresh does not see it (docs/existing-portal.md; the weekly full refresh does)."""
    ours = _push(100)
    portal = {**ours, "11000": 1_010_500}  # ours at 1_010_000, edited 0.5 s later
    read, calls, _ = _refresh(portal, ours)
    assert (read, calls) == ([], 4)  # tail, the two parts of 5,000 (both add up), head


def test_a_push_small_enough_is_read_back_whole() -> None:
    ours = _push(10)
    read, calls, stats = _refresh(dict(ours), ours, readback_limit=own_window.READBACK_LIMIT)
    assert (len(read), calls, stats.count_calls) == (1000, 5, 0)


def test_no_writes_of_ours_reads_the_window_as_before() -> None:
    portal = {str(i): 1_000_000 + i for i in range(450)}
    read, calls, stats = _refresh(portal, {})
    assert (len(read), calls, stats.count_calls) == (450, 3, 0)


def test_ranges_verified_during_the_push_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole push was counted while it ran (spokesync.sync.verify_push): the refresh
    reads the tail and the head, 2 calls, and counts nothing."""
    monkeypatch.setattr(own_window, "PART_RECORDS", 200)
    ours = _push(10)
    read, calls, stats = _refresh(dict(ours), {}, verified=[(1_000_000, 1_009_000)])
    assert (read, calls, stats.count_calls) == ([], 2, 0)


def test_a_part_left_unverified_is_counted_and_read_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Parts of 200; the push's counts proved all but 1_002_000..1_003_999, where someone
    else's record landed at 1_002_500. The refresh knows the 200 of ours outside the proved
    ranges; that stretch is one part reaching up to the next proved range: its count (201 ≠
    200) is read, its page of 200 then one more. Tail + count + page + head = 4 calls."""
    monkeypatch.setattr(own_window, "PART_RECORDS", 200)
    ours = _push(10)
    portal = {**ours, "99": 1_002_500}
    outside = {i: ms for i, ms in ours.items() if 1_002_000 <= ms <= 1_003_999}
    assert len(outside) == 200
    verified = [(1_000_000, 1_001_999), (1_004_000, 1_009_000)]
    read, calls, stats = _refresh(portal, outside, verified=verified)
    assert "99" in read and len(read) == 201
    assert (calls, stats.count_calls, stats.verified) == (4, 1, 0)
    known = KnownTimes(list(outside), list(outside.values()))
    assert known.parts(SINCE, verified) == [
        ("read", 900_000, 999_999),
        ("count", 1_002_000, 1_003_999),
        ("read", 1_009_001, None),
    ]


def test_a_small_remainder_beside_verified_ranges_is_read_back_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same, with the 200 outside the proved ranges under the read-back limit: the two
    stretches between and around the proved ranges are read, no count: head, the middle
    stretch (200 + 1: two pages), the tail = 4 calls."""
    monkeypatch.setattr(own_window, "PART_RECORDS", 200)
    ours = _push(10)
    portal = {**ours, "99": 1_002_500}
    outside = {i: ms for i, ms in ours.items() if 1_002_000 <= ms <= 1_003_999}
    verified = [(1_000_000, 1_001_999), (1_004_000, 1_009_000)]
    read, calls, stats = _refresh(portal, outside, readback_limit=10_000, verified=verified)
    assert "99" in read and len(read) == 201
    assert (calls, stats.count_calls) == (4, 0)
