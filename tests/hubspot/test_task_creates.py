"""Task creates on MockTransport, for the answers the sandbox cannot script: a 4xx HubSpot
refuses the task with (a permanent dead letter, parked until the task changes), the daily
limit mid-trigger (stops the trigger: DAILY_BUDGET), and a re-send that finds its task by
marker among the record's linked tasks."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import httpx
import pytest

from spokesync.exit_codes import ExitCode
from spokesync.hubspot.client import HubSpotClient
from spokesync.hubspot.retry import RetryPolicy
from spokesync.hubspot.tasks import create_tasks
from spokesync.state.store import StateStore
from spokesync.task_triggers import TaskIntent

EVENT = "evt" + "a" * 32


def intent(subject: str = "Usage threshold reached") -> TaskIntent:
    return TaskIntent(
        event_id=EVENT,
        trigger="usage_threshold_crossed",
        about_type="companies",
        about_external_id="ACC-1",
        properties={
            "hs_task_subject": subject,
            "hs_task_body": f"Reach out. spokesync event {EVENT}",
            "hs_timestamp": "2026-01-05T09:00:00.000Z",
        },
        source_row={"account_id": "ACC-1", "crossed_on": "2026-01-02"},
    )


class Portal:
    """HubSpot's answers, scripted per create call; records every request."""

    def __init__(self, creates: list[httpx.Response]) -> None:
        self.creates = creates
        self.calls: list[tuple[str, str]] = []
        self.tasks: dict[str, dict[str, Any]] = {}  # held tasks: id → properties

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls.append((request.method, path))
        if path.endswith("/labels"):
            types = [{"category": "HUBSPOT_DEFINED", "typeId": 192, "label": None}]
            return httpx.Response(200, json={"results": types})
        if path.endswith("/tasks/batch/create"):
            answer = self.creates.pop(0)
            if answer.status_code == 201:  # applied: HubSpot holds the task
                for n, i in enumerate(json.loads(request.content)["inputs"], start=1):
                    self.tasks[str(900 + n)] = i["properties"]
            return answer
        if path.endswith("/companies/tasks/batch/read"):  # the record's linked tasks
            links = [{"toObjectId": int(t)} for t in self.tasks]
            results = [{"from": {"id": "101"}, "to": links}] if links else []
            return httpx.Response(200, json={"status": "COMPLETE", "results": results})
        if path.endswith("/tasks/search"):
            token = json.loads(request.content)["filterGroups"][0]["filters"][0]["value"]
            hits = [{"id": i, "properties": p} for i, p in self.tasks.items()
                    if token in p["hs_task_body"]]  # fmt: skip
            return httpx.Response(200, json={"total": len(hits), "results": hits})
        if "/associations/tasks" in path:  # one record's linked tasks (GET, paged)
            return httpx.Response(
                200, json={"results": [{"toObjectId": int(t)} for t in self.tasks]}
            )
        if path.endswith("/tasks/batch/read"):
            ids = [i["id"] for i in json.loads(request.content)["inputs"]]
            results = [{"id": i, "properties": self.tasks[i]} for i in ids if i in self.tasks]
            return httpx.Response(200, json={"status": "COMPLETE", "results": results})
        return httpx.Response(404, json={"category": "OBJECT_NOT_FOUND", "message": path})

    def creates_sent(self) -> int:
        return sum(1 for _, p in self.calls if p.endswith("/tasks/batch/create"))


def run(portal: Portal, store: StateStore, intents: list[TaskIntent]) -> Any:
    async def go() -> Any:
        client = HubSpotClient(
            "https://api.hubapi.test",
            "pat-test",
            transport=httpx.MockTransport(portal.handle),
            retry=RetryPolicy(rng=random.Random(1)),
            sleep=lambda s: asyncio.sleep(0),
        )
        async with client:
            return await create_tasks(client, store, "usage_threshold_crossed", intents, "run-1")

    return asyncio.run(go())


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StateStore:
    s = StateStore(tmp_path / "state.duckdb")
    monkeypatch.setattr(s, "hubspot_ids", lambda _type, ids: {i: "101" for i in ids})
    return s


def test_a_refused_task_is_a_permanent_dead_letter_parked_until_it_changes(
    store: StateStore,
) -> None:
    refused = httpx.Response(
        400,
        json={"status": "error", "category": "VALIDATION_ERROR", "message": "bad owner",
              "correlationId": "c-1"},
    )  # fmt: skip
    portal = Portal([refused])
    report = run(portal, store, [intent()])
    assert (report.unconfirmed, report.sends, portal.creates_sent()) == (1, 1, 1)
    assert report.outcome == ExitCode.DEAD_LETTERED
    (letter,) = store.open_dead_letters("tasks")
    assert (letter.external_id, letter.category, letter.attempts) == (EVENT, "VALIDATION_ERROR", 1)
    assert letter.payload["about"] == {"type": "companies", "external_id": "ACC-1", "id": "101"}

    # The same task again: parked, nothing sent (not even the marker lookup's create).
    again = Portal([])
    report = run(again, store, [intent()])
    assert (report.parked, report.sends, again.creates_sent()) == (1, 0, 0)
    assert report.outcome == ExitCode.DEAD_LETTERED

    # The trigger's task changed: looked for by marker (pending), then sent, created once.
    created = httpx.Response(201, json={"status": "COMPLETE", "results": [
        {"id": "901", "properties": intent("New subject").properties}]})  # fmt: skip
    fixed = Portal([created])
    report = run(fixed, store, [intent("New subject")])
    assert (report.created, report.parked, fixed.creates_sent()) == (1, 0, 1)
    assert report.outcome == ExitCode.OK
    assert store.open_dead_letters("tasks") == []
    assert store.tasks.counts() == {"created": 1}


def test_a_lost_answer_is_found_by_marker_before_the_re_send(store: StateStore) -> None:
    # HubSpot applies the create but answers 502; the re-send would make a second task.
    portal = Portal([httpx.Response(502, json={"message": "Bad gateway"})])
    original = portal.handle

    def apply_then_fail(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/tasks/batch/create") and not portal.tasks:
            portal.calls.append((request.method, request.url.path))
            portal.creates.pop(0)
            portal.tasks["901"] = json.loads(request.content)["inputs"][0]["properties"]
            return httpx.Response(502, json={"message": "Bad gateway"})
        return original(request)

    portal.handle = apply_then_fail  # type: ignore[method-assign]
    report = run(portal, store, [intent()])
    assert (report.created, report.recovered, report.unconfirmed) == (0, 1, 0)
    assert portal.creates_sent() == 1  # found by marker: never sent again
    assert store.tasks.entries()[EVENT].task_id == "901"


def test_the_daily_limit_stops_the_trigger_and_dead_letters_what_was_pending(
    store: StateStore,
) -> None:
    daily = httpx.Response(
        429, json={"status": "error", "category": "RATE_LIMITS", "policyName": "DAILY",
                   "message": "You have reached your daily limit."},
    )  # fmt: skip
    portal = Portal([daily])
    report = run(portal, store, [intent()])
    assert report.stopped == ExitCode.DAILY_BUDGET and report.outcome == ExitCode.DAILY_BUDGET
    (letter,) = store.open_dead_letters("tasks")
    assert (letter.category, letter.attempts) == ("DAILY_LIMIT", 1)
    assert store.tasks.counts() == {"pending": 1}  # the next run looks, then sends it
