"""Create HubSpot tasks exactly once per event, through the task ledger.

HubSpot tasks have no unique property and a create is not idempotent, so:

1. an event the ledger holds as ``created`` is skipped (rerun, backfill replaying the day);
2. a ``pending`` event (an earlier run died between the create call and recording its result,
   or its answer was lost and the run's retries ran out) is looked for first: by its marker
   with search (``hs_task_body CONTAINS_TOKEN <event id>``), then — search is eventually
   consistent — by reading the tasks associated with the record and their bodies (associations
   are written in the same call as the task, and reads of them are consistent). Found:
   recorded, not created. A pending event whose last create HubSpot rejected for a permanent
   reason (an open dead letter that is not transient) is *parked*: not sent again until its
   task's properties change or a person replays it (``spokesync state replay --object tasks``);
3. the rest are recorded ``pending`` (committed) **before** ``POST /crm/v3/objects/tasks/batch/create``
   (≤ 100 inputs, each associated with its record in the same call), then ``created`` with the
   ids HubSpot returned.

A create is retried within the run like every other write, but never blindly: a 5xx, a
dropped connection or a 2xx that does not carry the task may each have been applied, so
before every re-send the tasks linked to the chunk's records are read back (one batch read of
the links, consistent, then the tasks' bodies) and a task found by its marker is recorded, not
created again. A 429 is never applied; the client retries it itself. After the retry policy's
attempts, or on a terminal answer (a 4xx, a 207 with errors), the events still pending are
dead letters (``object_type`` ``tasks``, the event id, the attempt count): transient ones are
sent again by the next run by themselves (the ledger still holds them pending).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from spokesync.changes import DeadLetter
from spokesync.events import CanonicalEvent, SourceRow
from spokesync.exit_codes import ExitCode
from spokesync.hubspot.association_types import list_association_types
from spokesync.hubspot.client import BatchResponse, HubSpotClient, _raise_unless_ok
from spokesync.hubspot.errors import (
    DailyLimitReached,
    HubSpotAuthError,
    HubSpotError,
    RetriesExhausted,
    parse_batch_errors,
)
from spokesync.hubspot.retry import RetryPolicy
from spokesync.state.completeness import LinkCompleteness
from spokesync.state.store import StateStore
from spokesync.task_triggers import TaskIntent

BATCH = 100
LINK_READ_BATCH = 1_000  # HubSpot's v4 associations batch/read limit
SEARCH_PAGE = 100
DEAD_LETTER_TYPE = "tasks"  # dead letters of task creates: object_type tasks, the event id
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
    # not confirmed after the run's retries (or rejected): dead letters, still pending in the
    # ledger; the next run looks for them by marker, then sends them again (unless parked)
    unconfirmed: int = 0
    parked: int = 0  # HubSpot rejected them for a permanent reason: not sent until they change
    sends: int = 0  # task create calls, first sends and re-sends
    incomplete_window: int = 0  # found on days missing in the warehouse: not real, no task
    stale: int = 0  # older than the trigger's lookback before the newest data: no task
    calls: int = 0
    stopped: ExitCode | None = None  # the daily budget (DAILY_BUDGET) or the token (AUTH)
    created_ids: dict[str, str] = field(default_factory=dict)  # event id → task id
    errors: list[str] = field(default_factory=list)
    completeness: LinkCompleteness | None = None  # task→record links, measured after the run

    def line(self) -> str:
        return (
            f"tasks {self.trigger}: events {self.intents}, created {self.created}, "
            f"recovered {self.recovered}, already created {self.already_created}, waiting for "
            f"record {self.waiting_for_record}, dead-lettered {self.unconfirmed}"
            + (f", parked {self.parked}" if self.parked else "")
            + "; not tasks: "
            f"incomplete window {self.incomplete_window}, older than the lookback {self.stale}"
        )

    @property
    def outcome(self) -> ExitCode:
        """The exit code this trigger alone would give."""
        if self.stopped is not None:
            return self.stopped
        if self.errors or self.unconfirmed or self.parked:
            return ExitCode.DEAD_LETTERED  # see `spokesync state dead-letters --object tasks`
        return ExitCode.OK


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


async def linked_markers(
    client: HubSpotClient, about_type: str, about_ids: list[str], run_id: str
) -> dict[str, str]:
    """event id → task id for the tasks associated with ``about_ids`` (consistent reads: one
    v4 ``batch/read`` of the links per 1,000 records, then the tasks' bodies, 100 a call). A
    record whose links come back paged is read on its own, every page."""
    task_ids: list[str] = []
    paged: list[str] = []
    ids = sorted(set(about_ids))
    for n, start in enumerate(range(0, len(ids), LINK_READ_BATCH), start=1):
        response = await client.request(
            "POST",
            client.associations_path(about_type, "tasks", "/batch/read"),
            json={"inputs": [{"id": i} for i in ids[start : start + LINK_READ_BATCH]]},
            request_id=f"{run_id}-links-{n}",
        )
        for r in BatchResponse.from_response(_raise_unless_ok(response)).results:
            if ((r.get("paging") or {}).get("next") or {}).get("after"):
                paged.append(str((r.get("from") or {}).get("id")))
                continue
            task_ids += [str(t.get("toObjectId")) for t in r.get("to") or ()]
    out: dict[str, str] = {}
    for about_id in paged:
        out.update(await _associated_markers(client, about_type, about_id, run_id))
    task_ids = sorted(set(task_ids))
    for n, start in enumerate(range(0, len(task_ids), BATCH), start=1):
        records = await client.batch_read(
            "tasks", task_ids[start : start + BATCH], ["hs_task_body"],
            request_id=f"{run_id}-bodies-{n}",
        )  # fmt: skip
        for event_id, task_id in _markers(records).items():
            out.setdefault(event_id, task_id)
    return out


def _as_sent(properties: dict[str, Any]) -> dict[str, str]:
    return {str(k): "" if v is None else str(v) for k, v in properties.items()}


def _letter(intent: TaskIntent, about_id: str | None, why: _Why, attempts: int) -> DeadLetter:
    about = {"type": intent.about_type, "external_id": intent.about_external_id, "id": about_id}
    return DeadLetter(
        object_type=DEAD_LETTER_TYPE,
        external_id=intent.event_id,
        payload={"trigger": intent.trigger, "about": about, "properties": intent.properties},
        category=why.category,
        message=why.message,
        correlation_id=why.correlation_id,
        attempts=attempts,
        as_of=_as_of(intent),
    )


def _as_of(intent: TaskIntent) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(intent.source_row.get("crossed_on")))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _Why:
    """Why the events still pending are not confirmed (a dead letter's category and message)."""

    category: str
    message: str
    correlation_id: str | None = None


async def create_tasks(
    client: HubSpotClient,
    store: StateStore,
    trigger: str,
    intents: list[TaskIntent],
    run_id: str,
) -> TaskReport:
    """Make each intent's task exist in HubSpot exactly once (see the module docstring).

    The daily budget running out or a refused token stops the trigger (``report.stopped``);
    what was not confirmed is dead-lettered and goes again on the next run."""
    report = TaskReport(trigger=trigger, intents=len(intents))
    if not intents:
        return report
    ledger = store.tasks.entries(i.event_id for i in intents)
    parked = store.dead_letters.parked(DEAD_LETTER_TYPE)
    todo: list[TaskIntent] = []
    for intent in intents:
        entry = ledger.get(intent.event_id)
        if entry is not None and entry.state == "created":
            report.already_created += 1
        elif parked.get(intent.event_id) == _as_sent(intent.properties):
            report.parked += 1  # HubSpot refused exactly this task: not sent again as it is
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
                _record_created(store, report, [intent], {intent.event_id: task_id}, run_id)
                report.recovered += 1
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
        try:
            await _create_chunk(client, store, report, chunk, about_ids, type_id, f"{n}", run_id)
        except _Stop as stop:
            # Nothing more is sent: this chunk's unconfirmed events are dead letters, the
            # chunks after it are not in the ledger yet, so the next run simply creates them.
            report.stopped = stop.code
            break
    return report


class _Stop(Exception):
    def __init__(self, code: ExitCode) -> None:
        self.code = code


def _record_created(
    store: StateStore,
    report: TaskReport,
    intents: list[TaskIntent],
    created: dict[str, str],
    run_id: str,
    *,
    recovered: bool = True,
) -> None:
    """Ledger ``created``, ``task_created`` events and the events' dead letters resolved."""
    if not created:
        return
    store.tasks.mark_created(created, run_id, recovered=recovered)
    store.events.record(
        [task_event(i, created[i.event_id], run_id) for i in intents if i.event_id in created]
    )
    store.dead_letters.resolve_ids(DEAD_LETTER_TYPE, created)
    report.created_ids.update(created)


async def _create_chunk(
    client: HubSpotClient,
    store: StateStore,
    report: TaskReport,
    chunk: list[TaskIntent],
    about_ids: dict[str, str],
    type_id: int,
    tag: str,
    run_id: str,
) -> None:
    """Create one chunk's tasks (pending in the ledger), re-sending what is unconfirmed after
    looking for it by marker, up to the client's retry policy's attempts."""
    policy = client.retry
    pending = {i.event_id: i for i in chunk}
    sends = 0
    why: _Why | None = None
    stop: ExitCode | None = None
    why_status: int | None = None  # the failed send's HTTP status (a 423 waits longer)
    while pending and stop is None:
        if sends:  # the last send may have been applied: never create a task twice
            await client.backoff(sends, why_status)
            try:
                linked = await linked_markers(
                    client,
                    chunk[0].about_type,
                    [about_ids[i.about_external_id] for i in pending.values()],
                    f"{run_id}-tasks-{tag}-s{sends}",
                )
            except HubSpotError as exc:  # cannot tell whether it was applied: send nothing
                why = _Why("RETRIES_EXHAUSTED", f"looking for the tasks before a re-send: {exc}")
                stop = ExitCode.AUTH if isinstance(exc, HubSpotAuthError) else None
                stop = ExitCode.DAILY_BUDGET if isinstance(exc, DailyLimitReached) else stop
                break
            report.calls += 1
            found = {e: t for e, t in linked.items() if e in pending}
            _record_created(store, report, list(pending.values()), found, run_id)
            report.recovered += len(found)
            for event_id in found:
                del pending[event_id]
            if not pending or sends >= policy.max_attempts:
                break
        sends += 1
        report.sends += 1
        report.calls += 1
        why_status = None
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
            for i in pending.values()
        ]
        try:
            response = await client.request(
                "POST",
                client.objects_path("tasks", "/batch/create"),
                json={"inputs": inputs},
                request_id=f"{run_id}-tasks-{chunk[0].trigger}-{tag}"
                + ("" if sends == 1 else f"-s{sends}"),
                write=True,
                retry=ONCE,  # 5xx / dropped: maybe applied, so looked for before a re-send
            )
        except DailyLimitReached as exc:  # a 429 is never applied: what is pending was not
            why, stop = _Why("DAILY_LIMIT", str(exc)), ExitCode.DAILY_BUDGET
            break
        except HubSpotAuthError as exc:
            why, stop = _Why("AUTH", str(exc)), ExitCode.AUTH
            break
        except RetriesExhausted as exc:  # one send failed (transient): look, then re-send
            why = _Why("RETRIES_EXHAUSTED", str(exc), exc.correlation_id)
            why_status = exc.status_code
            continue
        if not response.ok:  # a terminal 4xx: HubSpot applied nothing
            err = response.error()
            why = _Why(
                err.category or f"HTTP_{response.status_code}", err.short(), err.correlation_id
            )
            break
        if AFTER_CREATE is not None:
            AFTER_CREATE()
        body = response.body if isinstance(response.body, dict) else {}
        created = {
            e: t for e, t in _markers(list(body.get("results") or ())).items() if e in pending
        }
        _record_created(store, report, list(pending.values()), created, run_id, recovered=False)
        report.created += len(created)
        for event_id in created:
            del pending[event_id]
        errors = parse_batch_errors(body, response.status_code)
        if pending and errors:  # a 207: HubSpot refused these inputs
            first = errors[0]
            why = _Why(first.category or "VALIDATION_ERROR", first.short(), response.correlation_id)
            break
        if pending:  # a 2xx without (all of) the tasks: maybe applied, look before re-sending
            why = _Why(
                "NOT_CONFIRMED",
                f"HTTP {response.status_code} without {len(pending)} of the tasks in its answer",
                response.correlation_id,
            )
    if pending:
        assert why is not None
        store.dead_letters.record(
            [_letter(i, about_ids.get(i.about_external_id), why, sends) for i in pending.values()],
            run_id,
        )
        report.unconfirmed += len(pending)
        report.errors.append(
            f"{len(pending)} task(s) not confirmed after {sends} send(s): {why.category}: "
            f"{why.message}"
        )
    if stop is not None:
        raise _Stop(stop)
