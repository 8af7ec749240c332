"""The push executor against a scripted HubSpot (httpx.MockTransport) on virtual time."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import re

import httpx
import pytest

from spokesync.changes import RecordChange
from spokesync.hubspot.push import (
    PushAborted,
    PushConfig,
    build_batches,
    push_changes,
    push_changes_blocking,
    trace_id,
)
from spokesync.hubspot.retry import RetryPolicy

from .fakes import (
    AS_OF,
    TOKEN,
    FakeClock,
    FakeHubSpot,
    MemorySink,
    changes,
    error_response,
    make_client,
    ten_secondly_429,
)

RUN = "run42"


def push(
    fake: FakeHubSpot,
    chunks,
    *,
    object_type="companies",
    id_property="external_id",
    config: PushConfig | None = None,
    clock: FakeClock | None = None,
    **client_kw,
):
    clock = clock or FakeClock()
    sink = MemorySink()

    async def go():
        async with make_client(fake, clock, **client_kw) as client:
            return await push_changes(
                client,
                object_type=object_type,
                id_property=id_property,
                changes=chunks,
                sink=sink,
                run_id=RUN,
                config=config or PushConfig(concurrency=1),
            )

    report = asyncio.run(go())
    return report, sink, clock


def upsert_inputs(fake: FakeHubSpot) -> list[list[dict]]:
    return [
        b["inputs"]
        for r, b in zip(fake.requests, fake.bodies, strict=True)
        if r.url.path.endswith("/batch/upsert")
    ]


@pytest.mark.parametrize("n", [1, 99, 100, 101, 250, 1000])
def test_packs_densely_into_ceil_n_over_100_calls(n: int) -> None:
    fake = FakeHubSpot()
    records = changes(n)
    # Ragged chunks, as a streaming diff produces them.
    sizes = [7, 130, 13, 1, 100, 64]
    chunks, i, k = [], 0, 0
    while i < n:
        chunks.append(records[i : i + sizes[k % len(sizes)]])
        i += sizes[k % len(sizes)]
        k += 1
    report, sink, _ = push(fake, chunks)
    batches = upsert_inputs(fake)
    assert len(batches) == math.ceil(n / 100)
    assert [len(b) for b in batches] == [100] * (n // 100) + ([n % 100] if n % 100 else [])
    assert report.write_calls == report.calls == math.ceil(n / 100)
    assert report.records_in == report.records_sent == report.records_ok == n
    assert report.records_created == n and report.records_updated == 0
    assert fake.records == {c.external_id: c.properties for c in records}
    assert sorted(w.external_id for w in sink.confirmed) == [c.external_id for c in records]
    assert {w.hubspot_id for w in sink.confirmed} == {fake.ids[c.external_id] for c in records}
    assert all(w.created and w.as_of == AS_OF for w in sink.confirmed)


def test_every_input_has_unique_stable_trace_id_and_id_property() -> None:
    fake = FakeHubSpot()
    push(fake, [changes(150)])
    inputs = [i for b in upsert_inputs(fake) for i in b]
    assert {i["idProperty"] for i in inputs} == {"external_id"}
    traces = [i["objectWriteTraceId"] for i in inputs]
    assert len(set(traces)) == 150
    assert traces[0] == trace_id("companies", "acct-00000")
    assert trace_id("companies", "x") != trace_id("deals", "x")


def test_duplicates_are_merged_later_wins() -> None:
    fake = FakeHubSpot()
    first = RecordChange("companies", "acct-1", None, {"name": "A", "city": "Oslo"}, AS_OF)
    second = RecordChange("companies", "acct-1", "77", {"name": "B"}, AS_OF)
    other = RecordChange("companies", "acct-2", None, {"name": "C"}, AS_OF)
    report, sink, _ = push(fake, [[first, other], [second]])
    assert upsert_inputs(fake) == [
        [
            {
                "id": "acct-1",
                "idProperty": "external_id",
                "properties": {"name": "B", "city": "Oslo"},
                "objectWriteTraceId": trace_id("companies", "acct-1"),
            },
            {
                "id": "acct-2",
                "idProperty": "external_id",
                "properties": {"name": "C"},
                "objectWriteTraceId": trace_id("companies", "acct-2"),
            },
        ]
    ]
    assert report.records_in == 3 and report.records_deduplicated == 1
    assert report.records_sent == report.records_ok == 2
    assert sorted((w.external_id, w.properties["name"]) for w in sink.confirmed) == [
        ("acct-1", "B"),
        ("acct-2", "C"),
    ]
    # merging never changes the caller's changes (the push shares their dicts, uncopied)
    assert (first.properties, second.properties) == ({"name": "A", "city": "Oslo"}, {"name": "B"})


def test_contacts_match_back_by_lowercased_email_out_of_order() -> None:
    fake = FakeHubSpot()
    contacts = [
        RecordChange("contacts", f"User{i}@Acme.COM", None, {"firstname": f"U{i}"}, AS_OF)
        for i in range(40)
    ]
    contacts.append(RecordChange("contacts", "user3@acme.com", None, {"lastname": "X"}, AS_OF))
    report, sink, _ = push(fake, [contacts], object_type="contacts", id_property="email")
    (batch,) = upsert_inputs(fake)
    assert [i["id"] for i in batch] == [f"user{i}@acme.com" for i in range(40)]
    assert report.records_deduplicated == 1 and report.records_ok == 40
    got = {w.external_id: (w.hubspot_id, w.properties) for w in sink.confirmed}
    assert got["user3@acme.com"] == (
        fake.ids["user3@acme.com"],
        {"firstname": "U3", "lastname": "X"},
    )
    assert all(got[k][0] == fake.ids[k] for k in got)


def test_results_matched_by_trace_id_when_key_not_returned() -> None:
    fake = FakeHubSpot()
    fake.return_id_property = False
    fake.echo_trace = True
    report, sink, _ = push(fake, [changes(60)])
    assert report.records_ok == 60
    assert {w.external_id: w.hubspot_id for w in sink.confirmed} == fake.ids


def test_results_matched_by_hubspot_id_as_last_resort() -> None:
    fake = FakeHubSpot()
    fake.ids = {f"acct-{i:05d}": str(500 + i) for i in range(5)}
    fake.return_id_property = False
    records = [dataclasses.replace(c, hubspot_id=str(500 + i)) for i, c in enumerate(changes(5))]
    report, sink, _ = push(fake, [records])
    assert report.records_ok == 5 and report.records_updated == 5
    assert {w.external_id: w.hubspot_id for w in sink.confirmed} == fake.ids


def test_207_per_input_errors_become_dead_letters_rest_written() -> None:
    fake = FakeHubSpot()
    fake.invalid = {"tier": {"PLATINUM"}}
    records = changes(120, tier="GOLD")
    bad = {5, 50, 110}
    records = [
        dataclasses.replace(c, properties={**c.properties, "tier": "PLATINUM"}) if i in bad else c
        for i, c in enumerate(records)
    ]
    report, sink, _ = push(fake, [records])
    assert report.write_calls == 2 and report.retries == 0
    assert report.records_ok == 117 and report.records_dead_lettered == 3
    assert sorted(d.external_id for d in sink.dead) == [f"acct-{i:05d}" for i in sorted(bad)]
    letter = sink.dead[0]
    assert letter.category == "VALIDATION_ERROR"
    assert "PLATINUM was not one of the allowed options" in letter.message
    assert letter.correlation_id in {"corr-1", "corr-2"}
    assert letter.attempts == 1
    assert letter.payload["properties"]["tier"] == "PLATINUM"
    assert letter.payload["objectWriteTraceId"] == trace_id("companies", letter.external_id)
    assert set(fake.records) == {c.external_id for i, c in enumerate(records) if i not in bad}


def test_whole_batch_400_is_bisected_to_isolate_exactly_the_bad_record() -> None:
    fake = FakeHubSpot()
    fake.trace_ids = False
    fake.invalid = {"tier": {"BAD"}}
    records = [
        dataclasses.replace(c, properties={**c.properties, "tier": "BAD"}) if i == 5 else c
        for i, c in enumerate(changes(8))
    ]
    report, sink, _ = push(fake, [records])
    # 8 → [0-3] ok, [4-7] → [4,5] → [4] ok, [5] dead; [6,7] ok
    assert [len(b) for b in upsert_inputs(fake)] == [8, 4, 4, 2, 1, 1, 2]
    assert report.split_batches == 3
    assert [d.external_id for d in sink.dead] == ["acct-00005"]
    assert sink.dead[0].attempts == 4  # sent in the batches of 8, 4, 2 and 1
    assert report.records_ok == 7 and set(fake.records) == {
        c.external_id for c in records if c.external_id != "acct-00005"
    }


def test_bisect_isolates_three_bad_records_in_a_full_batch() -> None:
    fake = FakeHubSpot()
    fake.trace_ids = False
    fake.invalid = {"tier": {"BAD"}}
    bad = {3, 47, 98}
    records = [
        dataclasses.replace(c, properties={**c.properties, "tier": "BAD"}) if i in bad else c
        for i, c in enumerate(changes(100))
    ]
    report, sink, _ = push(fake, [records])
    assert sorted(d.external_id for d in sink.dead) == [f"acct-{i:05d}" for i in sorted(bad)]
    assert report.records_ok == 97 and len(fake.records) == 97
    # Each bad record costs at most one failing call per tree level.
    assert report.write_calls <= 1 + 2 * len(bad) * math.ceil(math.log2(100))


def test_429_ten_secondly_without_retry_after_waits_for_window() -> None:
    fake = FakeHubSpot()
    fake.script = lambda req, n: ten_secondly_429() if n == 1 else None
    report, sink, clock = push(fake, [changes(10)])
    assert report.rate_limited == 1 and report.retries == 1 and report.records_ok == 10
    assert clock.sleeps == [10.0]
    assert [r.headers["X-Request-Id"] for r in fake.requests] == [f"{RUN}-1", f"{RUN}-1-2"]
    assert [(b.status_code, b.attempt, b.records_ok) for b in sink.batches] == [
        (429, 1, 0),
        (200, 2, 10),
    ]


@pytest.mark.parametrize("burst", [8, 9])
def test_a_burst_of_429s_is_waited_out_up_to_the_cap_then_dead_lettered(burst: int) -> None:
    """RetryPolicy.max_rate_limited (8) 429s in a row on one batch are each waited out (the
    ten-second window, no Retry-After); one more and the batch is a dead letter (RATE_LIMITED: sent again next run)."""
    assert RetryPolicy().max_rate_limited == 8
    fake = FakeHubSpot()
    fake.script = lambda req, n: ten_secondly_429() if n <= burst else None
    report, sink, clock = push(fake, [changes(10)])
    assert report.rate_limited == burst
    if burst == 8:
        assert clock.sleeps == [10.0] * 8
        assert len(fake.requests) == 9 and report.records_ok == 10 and sink.dead == []
        assert len(fake.records) == 10
    else:
        assert clock.sleeps == [10.0] * 8  # the 9th 429 is not waited out: the batch gives up
        assert len(fake.requests) == 9 and report.records_ok == 0 and fake.records == {}
        assert sorted(d.external_id for d in sink.dead) == [f"acct-{i:05d}" for i in range(10)]
        assert {(d.category, d.attempts) for d in sink.dead} == {("RATE_LIMITED", 9)}


def test_429_honours_retry_after_seconds() -> None:
    fake = FakeHubSpot()
    fake.script = lambda req, n: ten_secondly_429(retry_after="3") if n == 1 else None
    report, _, clock = push(fake, [changes(10)])
    assert clock.sleeps == [3.0] and report.records_ok == 10


def test_429_secondly_waits_one_second() -> None:
    fake = FakeHubSpot()
    secondly = error_response(429, "RATE_LIMITS", "You have reached your secondly limit.")
    fake.script = lambda req, n: secondly if n in (1, 2) else None
    report, _, clock = push(fake, [changes(10)])
    assert clock.sleeps == [1.0, 1.0] and report.rate_limited == 2 and report.records_ok == 10


def test_daily_429_stops_and_dead_letters_the_rest() -> None:
    fake = FakeHubSpot()
    daily = error_response(
        429, None, "You have reached your daily limit.", errorType="RATE_LIMIT", policyName="DAILY"
    )
    fake.script = lambda req, n: daily if n == 2 else None
    report, sink, clock = push(fake, [changes(350)])
    assert fake.upsert_calls() == 2  # never spins
    assert clock.sleeps == []
    assert report.records_ok == 100 and report.records_dead_lettered == 250
    assert {d.category for d in sink.dead} == {"DAILY_LIMIT"}
    assert "daily API limit" in sink.dead[0].message
    assert report.stopped_reason and "daily" in report.stopped_reason
    assert [d.attempts for d in sink.dead].count(1) == 100  # the batch that hit the limit


@pytest.mark.parametrize("statuses", [(503,), (423,), (524,), (502, 504, 500)])
def test_transient_statuses_back_off_with_full_jitter(statuses: tuple[int, ...]) -> None:
    fake = FakeHubSpot()
    fake.script = lambda req, n: (
        error_response(statuses[n - 1], None, "oops") if n <= len(statuses) else None
    )
    report, sink, clock = push(fake, [changes(30)])
    assert report.records_ok == 30 and report.retries == len(statuses)
    assert fake.upsert_calls() == len(statuses) + 1
    assert len(clock.sleeps) == len(statuses)
    for attempt, (status, slept) in enumerate(zip(statuses, clock.sleeps, strict=True), 1):
        ceiling = min(30.0, 0.5 * 2 ** (attempt - 1))
        assert (2.0 <= slept <= max(2.0, ceiling)) if status == 423 else (0 <= slept <= ceiling)
    assert [r.headers["X-Request-Id"] for r in fake.requests][-1] == f"{RUN}-1-{len(statuses) + 1}"
    assert len(fake.records) == 30


def test_confirmed_writes_keep_whether_the_values_are_the_plans_canonical_forms() -> None:
    """The plan's changes are canonical (the store then saves them as sent); a record merged
    from a planned change and another one is not."""
    planned = [dataclasses.replace(c, canonical=True) for c in changes(3)]
    other = dataclasses.replace(changes(1, start=2)[0], properties={"city": "Oslo"})
    _, sink, _ = push(FakeHubSpot(), [planned, [other]])
    assert {w.external_id: w.canonical for w in sink.confirmed} == {
        "acct-00000": True,
        "acct-00001": True,
        "acct-00002": False,
    }


def test_a_retry_resends_the_same_json_bytes() -> None:
    """The body is encoded once (orjson) for every attempt: the retry of a 503 sends exactly
    the bytes of the first attempt, as JSON with its content type, byte-equal to what httpx's
    own ``json=`` encoding would send."""
    fake = FakeHubSpot()
    fake.script = lambda req, n: error_response(503, None, "busy") if n == 1 else None
    report, _, _ = push(fake, [changes(3, name="Café Ørsted")])
    assert report.records_ok == 3 and fake.upsert_calls() == 2
    first, second = fake.requests
    assert first.content == second.content
    assert first.headers["Content-Type"] == "application/json"
    assert first.content == httpx.Request("POST", "http://x", json=fake.bodies[0]).content
    assert "Café Ørsted".encode() in first.content  # UTF-8, not \u escapes


def test_a_nan_in_a_request_body_is_refused_not_sent_as_null() -> None:
    """JSON has no NaN; sending ``null`` instead would clear the property in HubSpot."""
    fake = FakeHubSpot()

    async def go() -> None:
        async with make_client(fake, FakeClock()) as client:
            await client.request(
                "POST", "/crm/x", json={"properties": {"n": float("nan")}}, request_id="r"
            )

    with pytest.raises(ValueError, match="JSON"):
        asyncio.run(go())
    assert fake.requests == []


def test_persistent_5xx_dead_letters_batch_after_capped_attempts() -> None:
    fake = FakeHubSpot()
    fake.script = lambda req, n: error_response(500, None, "boom") if n <= 4 else None
    report, sink, _ = push(fake, [changes(150)], retry=RetryPolicy(max_attempts=4, base_s=0.1))
    assert fake.upsert_calls() == 5
    assert report.records_dead_lettered == 100 and report.records_ok == 50
    assert {(d.category, d.attempts) for d in sink.dead} == {("RETRIES_EXHAUSTED", 4)}
    assert [b.status_code for b in sink.batches] == [500, 500, 500, 500, 200]


def test_transport_errors_are_retried() -> None:
    fake = FakeHubSpot()

    def script(request: httpx.Request, n: int):
        if n == 1:
            raise httpx.ConnectError("connection refused", request=request)
        if n == 2:
            raise httpx.ReadTimeout("timed out", request=request)
        if n == 3:
            raise httpx.RemoteProtocolError("peer closed connection", request=request)
        return None

    fake.script = script
    report, sink, _ = push(fake, [changes(20)])
    assert report.records_ok == 20 and report.retries == 3 and report.calls == 4
    assert [b.status_code for b in sink.batches] == [None, None, None, 200]
    assert sink.batches[0].error.startswith("ConnectError")


def test_empty_2xx_is_a_failure_and_is_resent() -> None:
    fake = FakeHubSpot()
    fake.script = lambda req, n: httpx.Response(200, json={}) if n == 1 else None
    report, sink, _ = push(fake, [changes(10)])
    assert fake.upsert_calls() == 2 and report.records_ok == 10
    assert sink.dead == []
    assert [r.headers["X-Request-Id"] for r in fake.requests] == [f"{RUN}-1", f"{RUN}-2"]


def test_always_empty_2xx_ends_as_not_confirmed_dead_letters() -> None:
    fake = FakeHubSpot()
    fake.script = lambda req, n: httpx.Response(200, content=b"")
    report, sink, _ = push(
        fake, [changes(10)], config=PushConfig(concurrency=1, confirm_attempts=3)
    )
    assert fake.upsert_calls() == 3 and report.records_ok == 0
    assert {(d.category, d.attempts) for d in sink.dead} == {("NOT_CONFIRMED", 3)}
    assert len(sink.dead) == 10


def test_401_aborts_without_dead_letters_keeping_confirmed_writes() -> None:
    fake = FakeHubSpot()
    unauthorized = error_response(
        401, "INVALID_AUTHENTICATION", "Authentication credentials not found."
    )
    fake.script = lambda req, n: unauthorized if n == 2 else None
    with pytest.raises(PushAborted, match="HTTP 401 INVALID_AUTHENTICATION") as info:
        push(fake, [changes(300)])
    report = info.value.report
    assert report.records_ok == 100 and report.records_dead_lettered == 0
    assert fake.upsert_calls() == 2
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)


def test_non_unique_id_property_aborts_with_a_clear_message() -> None:
    fake = FakeHubSpot()
    fake.script = lambda req, n: error_response(
        400, "VALIDATION_ERROR", "Unable to perform update/upsert by non-unique 0-2 property name"
    )
    with pytest.raises(PushAborted, match="hasUniqueValue") as info:
        push(fake, [changes(300)])
    assert fake.upsert_calls() == 1 and info.value.report.records_dead_lettered == 0


def test_other_4xx_dead_letters_without_retry() -> None:
    fake = FakeHubSpot()
    fake.script = lambda req, n: error_response(404, "OBJECT_NOT_FOUND", "no such type")
    report, sink, _ = push(fake, [changes(3)])
    assert fake.upsert_calls() == 1
    assert {(d.category, d.correlation_id) for d in sink.dead} == {("OBJECT_NOT_FOUND", "c-err")}


def test_request_headers_and_paths() -> None:
    fake = FakeHubSpot()
    push(fake, [changes(201)])
    assert [r.url.path for r in fake.requests] == [
        "/crm/objects/2026-03/companies/batch/upsert"
    ] * 3
    for n, request in enumerate(fake.requests, 1):
        assert request.headers["X-Request-Id"] == f"{RUN}-{n}"
        assert re.fullmatch(r"spokesync/\d+\.\d+\.\d+.*", request.headers["User-Agent"])
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    fake_v3 = FakeHubSpot()
    push(fake_v3, [changes(1)], api_version="v3")
    assert fake_v3.requests[0].url.path == "/crm/v3/objects/companies/batch/upsert"


def test_batch_log_records_correlation_ids_and_counts() -> None:
    fake = FakeHubSpot()
    fake.invalid = {"name": {"Company 3"}}
    _, sink, _ = push(fake, [changes(150)])
    assert [
        (
            b.batch_seq,
            b.request_id,
            b.correlation_id,
            b.records_sent,
            b.records_ok,
            b.records_failed,
        )
        for b in sink.batches
    ] == [
        (1, f"{RUN}-1", "corr-1", 100, 99, 1),
        (2, f"{RUN}-2", "corr-2", 50, 50, 0),
    ]
    # Each confirmed write carries the correlation id of the batch that confirmed it.
    by_corr: dict[str | None, int] = {}
    for w in sink.confirmed:
        by_corr[w.correlation_id] = by_corr.get(w.correlation_id, 0) + 1
    assert by_corr == {"corr-1": 99, "corr-2": 50}
    assert {w.event_id for w in sink.confirmed} == {None}


def test_write_through_confirms_each_batch_before_the_next_is_sent() -> None:
    fake = FakeHubSpot()
    sink_seen: list[int] = []
    holder: dict[str, MemorySink] = {}

    def script(request: httpx.Request, n: int):
        sink_seen.append(len(holder["sink"].confirmed))
        return None

    fake.script = script
    sink = MemorySink()
    holder["sink"] = sink
    clock = FakeClock()

    async def go():
        async with make_client(fake, clock) as client:
            await push_changes(
                client,
                object_type="companies",
                id_property="external_id",
                changes=[changes(300)],
                sink=sink,
                run_id=RUN,
                config=PushConfig(concurrency=1),
            )

    asyncio.run(go())
    assert sink_seen == [0, 100, 200] and sink.confirm_calls == 3


def test_invalid_input_is_dead_lettered_with_a_clear_message() -> None:
    fake = FakeHubSpot()
    bad = [
        RecordChange("companies", "  ", None, {"name": "x"}, AS_OF),
        RecordChange("deals", "d-1", None, {"name": "x"}, AS_OF),
        RecordChange("companies", "c-1", None, {"size": 3}, AS_OF),  # type: ignore[dict-item]
    ]
    report, sink, _ = push(fake, [bad + changes(2)])
    assert report.records_in == 5 and report.records_ok == 2
    assert [d.category for d in sink.dead] == ["INVALID_INPUT"] * 3
    assert "external_id is empty" in sink.dead[0].message
    assert "'deals' does not match" in sink.dead[1].message
    assert "['size']" in sink.dead[2].message


def test_logs_mask_emails_and_never_hold_the_token(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeHubSpot()
    fake.invalid = {"firstname": {"Bad"}}
    fake.script = lambda req, n: (
        error_response(503, None, f"upstream said Bearer {TOKEN}") if n == 1 else None
    )
    contacts = [RecordChange("contacts", "jane.doe@acme.com", None, {"firstname": "Bad"}, AS_OF)]
    with caplog.at_level(logging.DEBUG):
        report, sink, _ = push(fake, [contacts], object_type="contacts", id_property="email")
    assert report.records_dead_lettered == 1
    assert "j***@acme.com" in caplog.text
    assert "jane.doe@acme.com" not in caplog.text
    assert TOKEN not in caplog.text
    for entry in sink.batches:
        assert TOKEN not in repr(entry)
    assert TOKEN not in repr(sink.dead)


def test_report_metadata_and_blocking_wrapper() -> None:
    fake = FakeHubSpot()
    clock = FakeClock()
    sink = MemorySink()
    client = make_client(fake, clock)
    report = push_changes_blocking(
        client,
        object_type="companies",
        id_property="external_id",
        changes=[changes(5)],
        sink=sink,
        run_id=RUN,
    )
    meta = report.to_metadata()
    assert (
        meta["records_ok"] == 5 and meta["write_calls"] == 1 and meta["object_type"] == "companies"
    )
    assert all(isinstance(v, int | float | str) for v in meta.values())
    assert "stopped_reason" not in meta


def test_build_batches_needs_no_network() -> None:
    batches = build_batches(
        [changes(150), changes(10)], object_type="companies", id_property="external_id"
    )
    assert [len(b) for b in batches] == [100, 50]


def test_concurrent_batches_write_everything_once() -> None:
    fake = FakeHubSpot()
    fake.script = lambda req, n: error_response(503, None, "x") if n % 7 == 0 else None
    report, sink, _ = push(fake, [changes(2000)], config=PushConfig(concurrency=4))
    assert report.records_ok == 2000 and len(fake.records) == 2000
    assert len({w.external_id for w in sink.confirmed}) == 2000 == len(sink.confirmed)
    assert sorted(int(b.request_id.split("-")[1]) for b in sink.batches if b.attempt == 1) == list(
        range(1, 21)
    )


def test_207_error_without_trace_id_is_not_lost() -> None:
    """An error that names no input leaves its record unconfirmed: re-sent, then dead-lettered
    NOT_CONFIRMED with HubSpot's message attached."""
    fake = FakeHubSpot()

    def script(request: httpx.Request, n: int):
        response = fake.upsert(json.loads(request.content))
        body = json.loads(response.content)
        dropped = [r for r in body["results"] if r["properties"]["external_id"] == "acct-00001"]
        body["results"] = [r for r in body["results"] if r not in dropped]
        body["errors"] = [
            {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": "something about a record",
                "context": {},
            }
        ]
        return httpx.Response(207, json=body)

    fake.script = script
    report, sink, _ = push(fake, [changes(3)])
    assert fake.upsert_calls() == 3 and report.records_ok == 2
    (letter,) = sink.dead
    assert letter.external_id == "acct-00001" and letter.category == "NOT_CONFIRMED"
    assert "something about a record" in letter.message and letter.attempts == 3


def test_a_failing_sink_surfaces_its_own_exception() -> None:
    class BrokenSink(MemorySink):
        def record_confirmed(self, writes, run_id):  # type: ignore[override]
            raise OSError("state store is read-only")

    fake = FakeHubSpot()
    clock = FakeClock()

    async def go():
        async with make_client(fake, clock) as client:
            await push_changes(
                client,
                object_type="companies",
                id_property="external_id",
                changes=[changes(10)],
                sink=BrokenSink(),
                run_id=RUN,
            )

    with pytest.raises(OSError, match="read-only"):
        asyncio.run(go())


class SlowFake(FakeHubSpot):
    """Answers after a real (short) delay per call number, logging when each call starts and
    ends, so that calls overlap as over a network."""

    def __init__(self, delays: dict[int, float]) -> None:
        super().__init__()
        self.delays = delays
        self.events: list[tuple[str, int]] = []
        self.started: list[str] = []  # the first input's id of each call, in the order sent

    def transport(self) -> httpx.MockTransport:
        async def handle(request: httpx.Request) -> httpx.Response:
            n = sum(kind == "start" for kind, _ in self.events) + 1  # calls numbered as sent
            self.events.append(("start", n))
            self.started.append(json.loads(request.content)["inputs"][0]["id"])
            await asyncio.sleep(self.delays.get(n, 0.001))
            response = self.handle(request)
            self.events.append(("end", n))
            return response

        return httpx.MockTransport(handle)


WINDOWS = PushConfig(concurrency=2, dedupe_window=200)


def test_the_next_window_is_sent_while_the_last_batches_of_one_are_in_flight() -> None:
    """Windows of ``dedupe_window`` records do not drain the calls in flight between them: the
    first batch of window 2 goes as soon as a slot is free, while window 1's slow second batch
    is still out (it used to wait for all of window 1). Calls stay ⌈n/100⌉, all in order."""
    fake = SlowFake({2: 0.2})
    report, sink, _ = push(
        fake, [changes(100, start=i) for i in range(0, 600, 100)], config=WINDOWS
    )
    assert report.records_ok == 600 and fake.upsert_calls() == 6
    assert fake.events.index(("start", 3)) < fake.events.index(("end", 2))
    assert fake.started == [f"acct-{i:05d}" for i in range(0, 600, 100)]


def test_a_record_changed_again_in_a_later_window_is_written_after_the_first_write() -> None:
    """A later change of a record still being sent waits for that window: HubSpot ends with the
    later value, never the earlier one written last."""
    fake = SlowFake({1: 0.2})  # the batch holding the record's first change is slow
    again = dataclasses.replace(changes(1, start=5)[0], properties={"name": "new"})
    chunks = [changes(100), changes(100, start=100), [again, *changes(99, start=200)]]
    chunks.append(changes(100, start=299))
    report, sink, _ = push(fake, chunks, config=WINDOWS)
    assert fake.records["acct-00005"]["name"] == "new"
    writes = [n for n, body in enumerate(fake.bodies, 1) if any(
        i["id"] == "acct-00005" for i in body["inputs"])]  # fmt: skip
    assert len(writes) == 2
    assert fake.events.index(("end", writes[0])) < fake.events.index(("start", writes[1]))
    assert report.records_ok == 400 and fake.upsert_calls() == 4


def test_a_401_in_a_window_being_sent_stops_the_push_without_hanging() -> None:
    fake = SlowFake({})
    unauthorized = error_response(401, "INVALID_AUTHENTICATION", "Authentication failed.")
    fake.script = lambda req, n: unauthorized if n == 1 else None
    with pytest.raises(PushAborted, match="HTTP 401"):
        push(fake, [changes(100, start=i) for i in range(0, 1000, 100)], config=WINDOWS)
    assert fake.upsert_calls() <= WINDOWS.concurrency  # what was in flight, nothing after
