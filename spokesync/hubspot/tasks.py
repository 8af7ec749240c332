"""Create HubSpot tasks exactly once per event, through the task ledger.

HubSpot tasks have no unique property and a create is not idempotent, so:

1. an event the ledger holds as ``created`` is skipped (rerun, backfill replaying the day);
2. a ``pending`` event (an earlier run died between the create call and recording its result,
   or the response was lost) is looked for first: by its marker with search
   (``hs_task_body CONTAINS_TOKEN <event id>``), then — search is eventually consistent — by
   reading the tasks associated with the record and their bodies (associations are written in
   the same call as the task, and reads of them are consistent). Found: recorded, not created;
3. the rest are recorded ``pending`` (committed) **before** ``POST /crm/v3/objects/tasks/batch/create``
   (≤ 100 inputs, each associated with its record in the same call), then ``created`` with the
   ids HubSpot returned. The create is sent once: a 5xx or a dropped connection may have been
   applied, so it is never retried blindly; the entries stay pending and the next run recovers
   them as in 2. A 429 (never applied) is retried.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from spokesync.events import CanonicalEvent, SourceRow
from spokesync.hubspot.association_types import list_association_types
from spokesync.hubspot.client import HubSpotClient, _raise_unless_ok
from spokesync.hubspot.errors import HubSpotError
from spokesync.hubspot.retry import RetryPolicy
from spokesync.state.completeness import LinkCompleteness
from spokesync.state.store import StateStore
from spokesync.task_triggers import TaskIntent

BATCH = 100
SEARCH_PAGE = 100
MARKER = re.compile(r"\bspokesync event (evt[0-9a-f]{32})\b")
ONCE = RetryPolicy(max_attempts=1)

# Test hook: called after HubSpot answered a create and before the ledger records it (the
# SIGKILL end-to-end test kills the process here). None in normal runs.
AFTER_CREATE: Callable[[], None] | None = None


@dataclass
class TaskReport:
    trigger: str
    intents: int = 0
    already_created: int = 0
    recovered: int = 0
    created: int = 0
    waiting_for_record: int = 0  # the record is not in HubSpot yet: a later run creates it
    unconfirmed: int = 0  # sent, answer lost or failed: pending, recovered by the next run
    incomplete_window: int = 0  # found on days missing in the warehouse: not real, no task
    stale: int = 0  # older than the trigger's lookback before the newest data: no task
    calls: int = 0
    created_ids: dict[str, str] = field(default_factory=dict)  # event id → task id
    errors: list[str] = field(default_factory=list)
    completeness: LinkCompleteness | None = None  # task→record links, measured after the run

    def line(self) -> str:
        return (
            f"tasks {self.trigger}: events {self.intents}, created {self.created}, "
            f"recovered {self.recovered}, already created {self.already_created}, waiting for "
            f"record {self.waiting_for_record}, unconfirmed {self.unconfirmed}; not tasks: "
            f"incomplete window {self.incomplete_window}, older than the lookback {self.stale}"
        )


def _markers(records: list[dict[str, Any]]) -> dict[str, str]:
    """event id → task id, from tasks' bodies."""
    out: dict[str, str] = {}
    for r in records:
        body = (r.get("properties") or {}).get("hs_task_body") or ""
        for m in MARKER.finditer(str(body)):
            out.setdefault(m.group(1), str(r["id"]))
    return out


async def _search_marker(client: HubSpotClient, event_id: str, run_id: str) -> str | None:
    body = {
        "filterGroups": [
            {"filters": [{"propertyName": "hs_task_body", "operator": "CONTAINS_TOKEN",
                          "value": event_id}]}
        ],
        "properties": ["hs_task_body"],
        "limit": SEARCH_PAGE,
    }  # fmt: skip
    found = await client.search("tasks", body, request_id=f"{run_id}-task-search-{event_id[:11]}")
    return _markers(list(found.get("results") or ())).get(event_id)


async def _associated_markers(
    client: HubSpotClient, about_type: str, about_id: str, run_id: str
) -> dict[str, str]:
    """Markers of the tasks associated with one record (consistent reads)."""
    ids: list[str] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 500}
        if after:
            params["after"] = after
        response = await client.request(
            "GET",
            f"/crm/v4/objects/{client.type_path(about_type)}/{about_id}/associations/tasks",
            params=params,
            request_id=f"{run_id}-task-links-{about_id}",
        )
        body = _raise_unless_ok(response).body or {}
        ids += [str(r.get("toObjectId")) for r in body.get("results") or ()]
        after = ((body.get("paging") or {}).get("next") or {}).get("after")
        if not after:
            break
    if not ids:
        return {}
    records: list[dict[str, Any]] = []
    for start in range(0, len(ids), BATCH):
        records += await client.batch_read(
            "tasks",
            ids[start : start + BATCH],
            ["hs_task_body"],
            request_id=f"{run_id}-task-read-{about_id}",
        )
    return _markers(records)


async def find_task(
    client: HubSpotClient, intent: TaskIntent, about_id: str | None, run_id: str
) -> str | None:
    """The id of the task carrying ``intent``'s marker, if HubSpot has one."""
    task_id = await _search_marker(client, intent.event_id, run_id)
    if task_id is None and about_id is not None:
        task_id = (await _associated_markers(client, intent.about_type, about_id, run_id)).get(
            intent.event_id
        )
    return task_id


async def task_association_type(client: HubSpotClient, about_type: str, run_id: str) -> int:
    """The unlabeled HUBSPOT_DEFINED task → ``about_type`` type id, read from HubSpot."""
    types = await list_association_types(
        client, "tasks", about_type, request_id=f"{run_id}-task-assoc-types"
    )
    for t in types:
        if t.get("category") == "HUBSPOT_DEFINED" and t.get("label") is None:
            return int(t["typeId"])
    raise HubSpotError(f"HubSpot has no default association type tasks → {about_type}")


def task_event(intent: TaskIntent, task_id: str, run_id: str) -> CanonicalEvent:
    """The ``task_created`` event: the crossing's event id, the record and the task."""
    as_of = intent.occurred_on or dt.datetime.now(dt.UTC).date()
    return CanonicalEvent(
        event_id=intent.event_id,
        type="task_created",
        object_type=intent.about_type,
        external_ids={intent.about_type: intent.about_external_id, "tasks": task_id},
        occurred_at=dt.datetime.now(dt.UTC),
        as_of=as_of,
        source_rows=[
            SourceRow(table=intent.trigger, key=json.dumps(intent.source_row, sort_keys=True))
        ],
        run_id=run_id,
        data={"subject": intent.properties.get("hs_task_subject")},
    )


async def create_tasks(
    client: HubSpotClient,
    store: StateStore,
    trigger: str,
    intents: list[TaskIntent],
    run_id: str,
) -> TaskReport:
    """Make each intent's task exist in HubSpot exactly once (see the module docstring)."""
    report = TaskReport(trigger=trigger, intents=len(intents))
    if not intents:
        return report
    ledger = store.tasks.entries(i.event_id for i in intents)
    todo: list[TaskIntent] = []
    for intent in intents:
        entry = ledger.get(intent.event_id)
        if entry is not None and entry.state == "created":
            report.already_created += 1
        else:
            todo.append(intent)
    if not todo:
        return report
    about_type = todo[0].about_type
    about_ids = store.hubspot_ids(about_type, (i.about_external_id for i in todo))
    fresh: list[TaskIntent] = []
    for intent in todo:
        about_id = about_ids.get(intent.about_external_id)
        if intent.event_id in ledger:  # pending: was it created before the crash?
            task_id = await find_task(client, intent, about_id, run_id)
            report.calls += 1
            if task_id is not None:
                store.tasks.mark_created({intent.event_id: task_id}, run_id, recovered=True)
                store.events.record([task_event(intent, task_id, run_id)])
                report.recovered += 1
                report.created_ids[intent.event_id] = task_id
                continue
        if about_id is None:
            report.waiting_for_record += 1
            continue
        fresh.append(intent)
    if not fresh:
        return report
    type_id = await task_association_type(client, about_type, run_id)
    for n, start in enumerate(range(0, len(fresh), BATCH), start=1):
        chunk = fresh[start : start + BATCH]
        store.tasks.mark_pending(
            [
                {
                    "event_id": i.event_id,
                    "trigger": i.trigger,
                    "about_type": i.about_type,
                    "about_external_id": i.about_external_id,
                    "about_hubspot_id": about_ids[i.about_external_id],
                    "marker": i.marker,
                    "payload": i.properties,
                }
                for i in chunk
            ],
            run_id,
        )
        inputs = [
            {
                "properties": i.properties,
                "associations": [
                    {
                        "to": {"id": about_ids[i.about_external_id]},
                        "types": [
                            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}
                        ],
                    }
                ],
            }
            for i in chunk
        ]
        report.calls += 1
        try:
            response = await client.request(
                "POST",
                client.objects_path("tasks", "/batch/create"),
                json={"inputs": inputs},
                request_id=f"{run_id}-tasks-{trigger}-{n}",
                write=True,
                retry=ONCE,
            )
        except HubSpotError as exc:  # maybe applied: leave pending, the next run recovers
            report.unconfirmed += len(chunk)
            report.errors.append(str(exc))
            continue
        if not response.ok:
            report.unconfirmed += len(chunk)
            report.errors.append(f"HTTP {response.status_code}: {response.error().message}")
            continue
        if AFTER_CREATE is not None:
            AFTER_CREATE()
        created = _markers(list((response.body or {}).get("results") or ()))
        wanted = {i.event_id for i in chunk}
        created = {e: t for e, t in created.items() if e in wanted}
        store.tasks.mark_created(created, run_id)
        store.events.record(
            [task_event(i, created[i.event_id], run_id) for i in chunk if i.event_id in created]
        )
        report.created += len(created)
        report.created_ids.update(created)
        report.unconfirmed += len(wanted) - len(created)
    return report
