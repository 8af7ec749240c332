"""Test doubles: a virtual clock, an in-memory PushSink and a scripted HubSpot on MockTransport."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from spokesync.changes import BatchLog, ConfirmedWrite, DeadLetter, RecordChange
from spokesync.hubspot.client import HubSpotClient
from spokesync.hubspot.rate_limit import RateLimiter
from spokesync.hubspot.retry import RetryPolicy

AS_OF = dt.date(2026, 11, 1)
TOKEN = "pat-na1-test-secret-token-0123456789"


class FakeClock:
    """Virtual time: ``sleep`` advances ``now`` instantly and records every wait."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)


@dataclass
class MemorySink:
    """In-memory :class:`~spokesync.changes.PushSink`."""

    confirmed: list[ConfirmedWrite] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    batches: list[BatchLog] = field(default_factory=list)
    confirm_calls: int = 0

    def record_confirmed(self, writes: list[ConfirmedWrite], run_id: str) -> None:
        self.confirm_calls += 1
        self.confirmed.extend(writes)

    def record_dead_letters(self, letters: list[DeadLetter], run_id: str) -> None:
        self.dead.extend(letters)

    def record_batch(self, entry: BatchLog) -> None:
        self.batches.append(entry)


Script = Callable[[httpx.Request, int], httpx.Response | None]


class FakeHubSpot:
    """A small HubSpot: batch/upsert with unique keys, 207 per-input errors, shuffled results.

    ``invalid`` maps a property to the values it rejects (like an enumeration's bad option).
    ``script(request, n)`` may return a response to override call number ``n`` (1-based) —
    faults, 429s, empty bodies — or ``None`` to let the fake answer normally.
    Set ``trace_ids=False`` to behave like HubSpot without objectWriteTraceId: one bad input
    fails the whole batch with a 400.
    """

    def __init__(self, *, seed: int = 1, id_property: str = "external_id") -> None:
        self.records: dict[str, dict[str, str]] = {}  # key -> properties
        self.ids: dict[str, str] = {}  # key -> hubspot id
        self.requests: list[httpx.Request] = []
        self.bodies: list[Any] = []
        self.invalid: dict[str, set[str]] = {}
        self.script: Script | None = None
        self.trace_ids = True
        self.rng = random.Random(seed)
        self.next_id = itertools.count(1001)
        self.headers: dict[str, str] = {}
        self.echo_trace = False
        self.return_id_property = True

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = json.loads(request.content) if request.content else None
        self.bodies.append(body)
        if self.script is not None:
            scripted = self.script(request, len(self.requests))
            if scripted is not None:
                return scripted
        if request.url.path.endswith("/batch/upsert"):
            return self.upsert(body)
        return httpx.Response(404, json={"status": "error", "message": "resource not found"})

    def _bad(self, props: dict[str, str]) -> str | None:
        for name, value in props.items():
            if value in self.invalid.get(name, set()):
                return name
        return None

    def upsert(self, body: dict[str, Any]) -> httpx.Response:
        inputs = body["inputs"]
        if len(inputs) > 100:
            return error_response(400, "VALIDATION_ERROR", "too many inputs")
        keys = [self.key(i) for i in inputs]
        if len(set(keys)) != len(keys):
            return error_response(400, "VALIDATION_ERROR", "Duplicate IDs found in batch input")
        bad = [(i, self._bad(i["properties"])) for i in inputs]
        if not self.trace_ids and any(name for _, name in bad):
            return error_response(400, "VALIDATION_ERROR", "Property values were not valid")
        results, errors = [], []
        for item, bad_name in bad:
            if bad_name:
                errors.append(
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "message": f"{item['properties'][bad_name]} was not one of the allowed"
                        " options",
                        "context": {"objectWriteTraceId": [item["objectWriteTraceId"]]},
                        "errors": [],
                        "links": {},
                    }
                )
                continue
            key = self.key(item)
            new = key not in self.ids
            if new:
                self.ids[key] = str(next(self.next_id))
            self.records.setdefault(key, {}).update(item["properties"])
            props = dict(self.records[key])
            if self.return_id_property:
                props[item["idProperty"]] = key
            result = {"id": self.ids[key], "new": new, "properties": props, "archived": False}
            if self.echo_trace:
                result["objectWriteTraceId"] = item["objectWriteTraceId"]
            results.append(result)
        self.rng.shuffle(results)
        payload: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": "2026-11-01T00:00:00.000Z",
            "completedAt": "2026-11-01T00:00:00.100Z",
        }
        status = 200
        if errors:
            payload |= {"numErrors": len(errors), "errors": errors}
            status = 207
        return httpx.Response(
            status,
            json=payload,
            headers={"X-HubSpot-Correlation-Id": f"corr-{len(self.requests)}", **self.headers},
        )

    @staticmethod
    def key(item: dict[str, Any]) -> str:
        value = str(item["id"])
        return value.lower() if item["idProperty"] == "email" else value

    def upsert_calls(self) -> int:
        return sum(r.url.path.endswith("/batch/upsert") for r in self.requests)


def error_response(
    status: int,
    category: str | None,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> httpx.Response:
    body: dict[str, Any] = {"status": "error", "message": message, "correlationId": "c-err"}
    if category:
        body["category"] = category
    body |= extra
    return httpx.Response(status, json=body, headers=headers or {})


def ten_secondly_429(retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return error_response(
        429,
        None,
        "You have reached your ten_secondly_rolling limit.",
        headers=headers,
        errorType="RATE_LIMIT",
        policyName="TEN_SECONDLY_ROLLING",
    )


def changes(
    n: int, *, start: int = 0, object_type: str = "companies", **props: str
) -> list[RecordChange]:
    return [
        RecordChange(
            object_type=object_type,
            external_id=f"acct-{i:05d}",
            hubspot_id=None,
            properties={"name": f"Company {i}", **props},
            as_of=AS_OF,
            kind="create",
        )
        for i in range(start, start + n)
    ]


def make_client(
    fake: FakeHubSpot,
    clock: FakeClock,
    *,
    per_interval: int = 190,
    api_version: str = "2026-03",
    retry: RetryPolicy | None = None,
    margin: int | None = None,
) -> HubSpotClient:
    limiter = RateLimiter(
        per_interval, 10.0, margin=margin, clock=clock, sleep=clock.sleep, slack_s=0.0
    )
    return HubSpotClient(
        "http://hubspot.test",
        TOKEN,
        limiter=limiter,
        api_version=api_version,
        transport=fake.transport(),
        retry=retry or RetryPolicy(rng=random.Random(7)),
        sleep=clock.sleep,
    )
