"""The push executor: changed records → idempotent, rate-limited ``batch/upsert`` calls.

What it guarantees (see docs/push.md):

- **Minimum calls.** Inputs are deduplicated by canonical key (properties of duplicates merged,
  later wins) and packed 100 to a batch, densely across the incoming chunks; a partial batch is
  sent only at the end of the stream.
- **Idempotent.** Only ``batch/upsert`` by the mapping's unique id property (``email`` for
  contacts); a retry of a batch that may have committed cannot duplicate a record. Adopted
  records (``kind="adopt"``: an existing HubSpot record that matched, see
  :mod:`spokesync.adoption`) go by ``batch/update`` on their HubSpot id, stamping the external
  id with the other changed values in the same call; they are batched apart from upserts.
- **Matched back by key, never by position.** Every input carries an ``objectWriteTraceId`` (a
  stable hash of object type + key), so a bad record yields a 207 with its own error; results are
  matched by trace id, by the (lowercased) id-property value or by HubSpot id.
- **Nothing lost, nothing silent.** A whole-batch 400 is bisected to isolate the bad records; a
  2xx that confirms nothing is retried, then dead-lettered; 207 errors and exhausted retries are
  dead-lettered with payload, category, message, correlation id and attempts; a DAILY 429 stops
  the push and dead-letters what is left as ``DAILY_LIMIT``; 401/403 stop it with
  :class:`PushAborted` (nothing dead-lettered: fixing the token and re-running is the remedy).
- **Write-through.** Each batch's confirmed results go to ``sink.record_confirmed`` as soon as the
  batch returns, so a run killed half-way leaves the snapshot true.

Dedupe holds records in memory in windows of ``PushConfig.dedupe_window`` unique keys; windows are
sent one after another, so a duplicate that arrives in a later window is written after (and
wins over) the earlier one, never in the same batch. The next window is read while one is sent
and its batches queue behind that one's last ones, so the calls in flight never drain between
windows (a record changed again in a later window waits for the window holding it).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from spokesync.changes import BatchLog, ConfirmedWrite, DeadLetter, PushSink, RecordChange
from spokesync.hubspot.client import AttemptLog, BatchResponse, HubSpotClient, counting_calls
from spokesync.hubspot.errors import (
    ApiError,
    DailyLimitReached,
    HubSpotAuthError,
    HubSpotConfigError,
    HubSpotError,
    RetriesExhausted,
)
from spokesync.hubspot.redact import get_logger, mask_email

log = get_logger(__name__)

BATCH_LIMIT = 100


@dataclass(frozen=True, slots=True)
class PushConfig:
    """Knobs of the push. Defaults suit a Professional/Enterprise portal."""

    batch_size: int = BATCH_LIMIT
    # Batches in flight. The rate limiter is the real throttle; 8 in flight keep a 190–250
    # per 10 s budget busy even when a 100-record upsert takes ~0.4 s (8 / 0.4 s = 20 calls/s).
    concurrency: int = 8
    # Unique records held before sending (memory bound): about two windows are in memory at
    # once, a record with its properties ~1-2 kB in Python (50,000 held ~215 MB of a 100k
    # first sync's peak). A plan sends each record once, so a smaller window costs no call.
    dedupe_window: int = 10_000
    confirm_attempts: int = 3  # sends of an input whose 2xx neither confirmed nor rejected it
    split_on_400: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= BATCH_LIMIT:
            raise ValueError(f"batch_size must be 1..{BATCH_LIMIT}, got {self.batch_size}")
        if self.concurrency < 1 or self.confirm_attempts < 1:
            raise ValueError("concurrency and confirm_attempts must be ≥ 1")
        if self.dedupe_window < self.batch_size:
            raise ValueError("dedupe_window must be at least batch_size")


@dataclass
class PushReport:
    """What one push did; ``to_metadata()`` feeds Dagster asset metadata and the CLI summary."""

    object_type: str
    records_in: int = 0
    records_deduplicated: int = 0
    records_sent: int = 0
    records_ok: int = 0
    records_created: int = 0
    records_updated: int = 0
    records_adopted: int = 0  # of records_updated: existing HubSpot records we adopted
    records_dead_lettered: int = 0
    calls: int = 0
    write_calls: int = 0
    retries: int = 0
    rate_limited: int = 0
    split_batches: int = 0
    duration_s: float = 0.0
    records_per_s: float = 0.0
    stopped_reason: str | None = None

    def to_metadata(self) -> dict[str, int | float | str]:
        out: dict[str, int | float | str] = {
            k: (round(v, 3) if isinstance(v, float) else v)
            for k, v in asdict(self).items()
            if v is not None
        }
        return out


class PushAborted(HubSpotError):
    """The push stopped before the end (401/403 or a request HubSpot rejects for any record).

    ``report`` holds what was done until then; confirmed writes already reached the sink.
    """

    def __init__(self, message: str, report: PushReport, error: ApiError | None = None) -> None:
        super().__init__(message, error)
        self.report = report


def canonical_key(id_property: str, external_id: str) -> str:
    """The key HubSpot matches upserts on: emails are trimmed and lowercased."""
    value = external_id.strip()
    return value.lower() if id_property == "email" else value


def trace_id(object_type: str, key: str) -> str:
    """Stable, unique-per-input ``objectWriteTraceId``."""
    return hashlib.sha256(f"{object_type}\x1f{key}".encode()).hexdigest()[:24]


@dataclass(slots=True)
class _Item:
    """One deduplicated input and what happened to it so far.

    ``properties`` is never changed once the item is sent (merging happens at intake and
    replaces the dict), so payloads, confirmed writes and dead letters share it, uncopied."""

    key: str
    change: RecordChange
    properties: dict[str, str]
    trace: str
    attempts: int = 0
    sends: int = 0

    @property
    def adopt(self) -> bool:
        return self.change.kind == "adopt" and self.change.hubspot_id is not None

    def payload(self, id_property: str) -> dict[str, Any]:
        if self.adopt:
            return {
                "id": self.change.hubspot_id,
                "properties": self.properties,
                "objectWriteTraceId": self.trace,
            }
        return {
            "id": self.key,
            "idProperty": id_property,
            "properties": self.properties,
            "objectWriteTraceId": self.trace,
        }


def _merge(existing: _Item | None, change: RecordChange, key: str, object_type: str) -> _Item:
    if existing is None:  # the change's own dict: never changed in place (see _Item)
        return _Item(key, change, change.properties, trace_id(object_type, key))
    existing.properties = {**existing.properties, **change.properties}  # later wins
    existing.change = RecordChange(
        object_type=change.object_type,
        external_id=key,
        hubspot_id=change.hubspot_id or existing.change.hubspot_id,
        properties=existing.properties,
        as_of=change.as_of,
        kind="create"
        if "create" in (existing.change.kind, change.kind)
        else ("adopt" if "adopt" in (existing.change.kind, change.kind) else "update"),
        canonical=existing.change.canonical and change.canonical,
    )
    return existing


def build_batches(
    changes: Iterable[list[RecordChange]],
    *,
    object_type: str,
    id_property: str,
    batch_size: int = BATCH_LIMIT,
) -> list[list[dict[str, Any]]]:
    """The ``batch/upsert`` input lists a push would send, without any network (dry runs)."""
    pending: dict[str, _Item] = {}
    for chunk in changes:
        for change in chunk:
            key = canonical_key(id_property, change.external_id)
            pending[key] = _merge(pending.get(key), change, key, object_type)
    payloads = [item.payload(id_property) for item in pending.values()]
    return [payloads[i : i + batch_size] for i in range(0, len(payloads), batch_size)]


class _Push:
    """State of one push run (one object type)."""

    def __init__(
        self,
        client: HubSpotClient,
        object_type: str,
        id_property: str,
        sink: PushSink,
        run_id: str,
        config: PushConfig,
    ) -> None:
        self.client = client
        self.object_type = object_type
        self.id_property = id_property
        self.sink = sink
        self.run_id = run_id
        self.config = config
        self.report = PushReport(object_type)
        self.seq = 0
        self.daily_stop: str | None = None
        self.aborted = False  # set on 401/403 or a config error: send nothing more
        self.semaphore = asyncio.Semaphore(config.concurrency)
        self.batches_left = 0  # batches of windows started and not finished
        self.batch_done = asyncio.Event()

    # -- intake --------------------------------------------------------------------------------

    async def run(self, changes: Iterable[list[RecordChange]]) -> None:
        pending: dict[str, _Item] = {}
        # Full windows being sent while the next one is read: (task, keys). A window is started
        # once the one before it has no more batches left than can be in flight, so the calls
        # never drain between windows and at most about two windows are held in memory.
        sending: list[tuple[asyncio.Task[None], set[str]]] = []
        try:
            for chunk in changes:
                for change in chunk:
                    self.report.records_in += 1
                    item_key = self._accept(change)
                    if item_key is None:
                        continue
                    if any(item_key in keys for _, keys in sending):
                        # a record of a window still being sent: its later change goes after
                        await self._join(sending)
                    if item_key in pending:
                        self.report.records_deduplicated += 1
                    pending[item_key] = _merge(
                        pending.get(item_key), change, item_key, self.object_type
                    )
                if len(pending) >= self.config.dedupe_window:
                    # Send whole batches now; the remainder waits to be packed with what follows.
                    full = len(pending) // self.config.batch_size * self.config.batch_size
                    keys = list(pending)[:full]
                    await self._room()
                    # a window that already ended with an error (a 401) stops the push here:
                    # dropping it unread would lose the error and leave its records unsent
                    for task, _ in sending:
                        if task.done():
                            task.result()
                    sending = [(t, k) for t, k in sending if not t.done()] + [
                        (asyncio.create_task(self._send_all([pending.pop(k) for k in keys])),
                         set(keys))
                    ]  # fmt: skip
                    await asyncio.sleep(0)  # its first batches go out before reading on
            await self._send_all(list(pending.values()))
            await self._join(sending)
        finally:
            for task, _ in sending:  # stopped early (an error): nothing keeps sending
                task.cancel()
            await asyncio.gather(*(t for t, _ in sending), return_exceptions=True)

    async def _room(self) -> None:
        """Wait until the windows being sent have at most ``concurrency`` batches left."""
        while self.batches_left > self.config.concurrency and not self.aborted:
            self.batch_done.clear()
            await self.batch_done.wait()

    @staticmethod
    async def _join(sending: list[tuple[asyncio.Task[None], set[str]]]) -> None:
        """Wait for the windows being sent; the first one's error stops the push."""
        while sending:
            task, _ = sending.pop(0)
            await task

    def _accept(self, change: RecordChange) -> str | None:
        """The canonical key of a change, or ``None`` after dead-lettering a malformed one."""
        problem = None
        if change.object_type != self.object_type:
            problem = (
                f"object_type {change.object_type!r} does not match the push's {self.object_type!r}"
            )
        elif not isinstance(change.external_id, str) or not change.external_id.strip():
            problem = f"external_id is empty (id property {self.id_property!r})"
        elif not all(isinstance(v, str) for v in change.properties.values()):
            bad = sorted(k for k, v in change.properties.items() if not isinstance(v, str))
            problem = f"properties must be canonical strings; not strings: {bad}"
        if problem is None:
            return canonical_key(self.id_property, change.external_id)
        self._dead_letter_changes([change], "INVALID_INPUT", problem, None, 0)
        return None

    # -- sending -------------------------------------------------------------------------------

    async def _send_all(self, items: list[_Item]) -> None:
        if not items:
            return
        self.report.records_sent += len(items)
        size = self.config.batch_size
        batches = []
        for group in ([i for i in items if not i.adopt], [i for i in items if i.adopt]):
            batches += [group[i : i + size] for i in range(0, len(group), size)]
        self.batches_left += len(batches)
        finished = [0]
        try:
            async with asyncio.TaskGroup() as group:
                for batch in batches:
                    group.create_task(self._guarded(batch, finished))
        except BaseExceptionGroup as group_error:
            # One batch failed in a way that stops the push (or the sink raised): surface that
            # exception itself, not the task group's wrapper.
            errors = group_error.exceptions
            stop = [e for e in errors if isinstance(e, HubSpotAuthError | HubSpotConfigError)]
            raise (stop or list(errors))[0] from None
        finally:  # batches cancelled before they started never ran their own count down
            self.batches_left -= len(batches) - finished[0]
            self.batch_done.set()

    async def _guarded(self, batch: list[_Item], finished: list[int]) -> None:
        try:
            async with self.semaphore:
                await self._send(batch)
        finally:
            finished[0] += 1
            self.batches_left -= 1
            self.batch_done.set()

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    async def _send(self, items: list[_Item]) -> None:
        if self.aborted:
            return
        if self.daily_stop is not None:
            self._dead_letter(items, "DAILY_LIMIT", self.daily_stop, None)
            return
        seq = self._next_seq()
        request_id = f"{self.run_id}-{seq}"
        attempts: list[AttemptLog] = []
        for item in items:
            item.sends += 1
        send = self.client.batch_update if items[0].adopt else self.client.batch_upsert
        try:
            response = await send(
                self.object_type,
                [item.payload(self.id_property) for item in items],
                request_id=request_id,
                on_attempt=attempts.append,
            )
        except DailyLimitReached as exc:
            self._charge(items, attempts)
            if self.daily_stop is None:
                self.daily_stop = (
                    f"HubSpot daily API limit reached; push of {self.object_type} stopped, "
                    f"remaining records dead-lettered for replay after the reset ({exc})"
                )
                log.error("%s", self.daily_stop)
            self._log_attempts(seq, items, attempts, ok=0)
            self._dead_letter(items, "DAILY_LIMIT", self.daily_stop, None)
            return
        except RetriesExhausted as exc:
            self._charge(items, attempts)
            self._log_attempts(seq, items, attempts, ok=0)
            category = "RATE_LIMITED" if exc.status_code == 429 else "RETRIES_EXHAUSTED"
            self._dead_letter(items, category, str(exc), exc.correlation_id)
            return
        except HubSpotAuthError:
            self.aborted = True
            self._charge(items, attempts)
            self._log_attempts(seq, items, attempts, ok=0)
            raise
        self._charge(items, attempts)
        if response.response.ok:
            await self._on_success(seq, items, response, attempts)
        else:
            await self._on_client_error(seq, items, response, attempts)

    def _charge(self, items: list[_Item], attempts: list[AttemptLog]) -> None:
        for item in items:
            item.attempts += len(attempts)

    async def _on_success(
        self, seq: int, items: list[_Item], response: BatchResponse, attempts: list[AttemptLog]
    ) -> None:
        by_trace = {item.trace: item for item in items}
        by_key = {self._norm(item.key): item for item in items}
        by_id = {item.change.hubspot_id: item for item in items if item.change.hubspot_id}
        confirmed: dict[str, tuple[_Item, dict[str, Any]]] = {}
        for result in response.results:
            item = self._match(result, by_trace, by_key, by_id)
            if item is not None and item.key not in confirmed and result.get("id") is not None:
                confirmed[item.key] = (item, result)
        rejected: dict[str, tuple[_Item, ApiError]] = {}
        unattributed: list[ApiError] = []  # errors that name no input of this batch
        for error in response.errors:
            named = self._items_named(error, by_trace, by_key)
            if not named:
                unattributed.append(error)
            for item in named:
                if item.key not in confirmed:
                    rejected.setdefault(item.key, (item, error))
        unresolved = [i for i in items if i.key not in confirmed and i.key not in rejected]

        writes = [
            ConfirmedWrite(
                object_type=self.object_type,
                external_id=item.key,
                hubspot_id=str(result["id"]),
                properties=item.properties,
                as_of=item.change.as_of,
                created=bool(result.get("new", False)),
                correlation_id=response.correlation_id,
                updated_at=result.get("updatedAt"),
                canonical=item.change.canonical,
            )
            for item, result in confirmed.values()
        ]
        if writes:
            self.sink.record_confirmed(writes, self.run_id)
        created = sum(w.created for w in writes)
        self.report.records_adopted += sum(1 for item, _ in confirmed.values() if item.adopt)
        self.report.records_ok += len(writes)
        self.report.records_created += created
        self.report.records_updated += len(writes) - created
        self._log_attempts(seq, items, attempts, ok=len(writes), error=_summary(response))
        self._emit_dead_letters(
            [
                self._letter(
                    item,
                    error.category or "VALIDATION_ERROR",
                    error.message,
                    error.correlation_id or response.correlation_id,
                )
                for item, error in rejected.values()
            ]
        )
        if not unresolved:
            return
        retry = [i for i in unresolved if i.sends < self.config.confirm_attempts]
        give_up = [i for i in unresolved if i.sends >= self.config.confirm_attempts]
        what = (
            "no results and no errors"
            if not response.results and not response.errors
            else ("results that did not include these records")
        )
        log.warning(
            "%s-%s: HTTP %s with %s (%d records); %d re-sent",
            self.run_id,
            seq,
            response.status_code,
            what,
            len(unresolved),
            len(retry),
        )
        if give_up:
            extra = f"; unattributed error: {unattributed[0].short()}" if unattributed else ""
            self._dead_letter(
                give_up,
                "NOT_CONFIRMED",
                f"HubSpot answered HTTP {response.status_code} with {what} "
                f"after {self.config.confirm_attempts} sends{extra}",
                response.correlation_id,
            )
        if retry:
            self.report.retries += 1
            await self._send(retry)

    async def _on_client_error(
        self, seq: int, items: list[_Item], response: BatchResponse, attempts: list[AttemptLog]
    ) -> None:
        error = response.response.error()
        self._log_attempts(seq, items, attempts, ok=0)
        if response.status_code == 400 and "non-unique" in error.message:
            self.aborted = True
            raise HubSpotConfigError(
                f"HubSpot cannot upsert {self.object_type} by {self.id_property!r}: {error.message}"
                " — the id property must be created with hasUniqueValue (run `spokesync hubspot"
                " ensure-properties`)",
                error,
            )
        if response.status_code in (400, 409) and self.config.split_on_400 and len(items) > 1:
            # One bad record fails the whole batch (a 400, or the 409 one conflicting input
            # gives the whole batch): bisect to find it, write the rest.
            self.report.split_batches += 1
            middle = len(items) // 2
            for half in (items[:middle], items[middle:]):
                for item in half:
                    item.sends -= 1  # a split is not a re-send of the same input
                await self._send(half)
            return
        self._dead_letter(
            items,
            error.category or f"HTTP_{response.status_code}",
            error.message,
            error.correlation_id or response.correlation_id,
        )

    # -- matching ------------------------------------------------------------------------------

    def _norm(self, value: object) -> str:
        return canonical_key(self.id_property, str(value))

    def _match(
        self,
        result: dict[str, Any],
        by_trace: dict[str, _Item],
        by_key: dict[str, _Item],
        by_id: dict[str, _Item],
    ) -> _Item | None:
        trace = result.get("objectWriteTraceId")
        if trace and trace in by_trace:
            return by_trace[trace]
        value = (result.get("properties") or {}).get(self.id_property)
        if value is not None and self._norm(value) in by_key:
            return by_key[self._norm(value)]
        hubspot_id = result.get("id")
        return by_id.get(str(hubspot_id)) if hubspot_id is not None else None

    def _items_named(
        self, error: ApiError, by_trace: dict[str, _Item], by_key: dict[str, _Item]
    ) -> list[_Item]:
        named = [by_trace[t] for t in error.trace_ids if t in by_trace]
        named += [by_key[self._norm(i)] for i in error.ids if self._norm(i) in by_key]
        return named

    # -- reporting -----------------------------------------------------------------------------

    def _log_attempts(
        self,
        seq: int,
        items: list[_Item],
        attempts: list[AttemptLog],
        *,
        ok: int,
        error: str | None = None,
    ) -> None:
        for n, attempt in enumerate(attempts, start=1):
            last = n == len(attempts)
            self.sink.record_batch(
                BatchLog(
                    run_id=self.run_id,
                    batch_seq=seq,
                    request_id=attempt.request_id,
                    object_type=self.object_type,
                    endpoint=attempt.endpoint,
                    status_code=attempt.status_code,
                    correlation_id=attempt.correlation_id,
                    latency_ms=round(attempt.latency_ms, 3),
                    records_sent=len(items),
                    records_ok=ok if last else 0,
                    records_failed=(len(items) - ok) if last else len(items),
                    attempt=attempt.attempt,
                    error=attempt.error if attempt.error else (error if last else None),
                )
            )

    def _dead_letter(
        self, items: list[_Item], category: str, message: str, correlation_id: str | None
    ) -> None:
        self._emit_dead_letters(
            [self._letter(item, category, message, correlation_id) for item in items]
        )

    def _letter(
        self, item: _Item, category: str, message: str, correlation_id: str | None
    ) -> DeadLetter:
        return DeadLetter(
            object_type=self.object_type,
            external_id=item.key,
            payload=item.payload(self.id_property),
            category=category,
            message=message,
            correlation_id=correlation_id,
            attempts=item.attempts,
            as_of=item.change.as_of,
        )

    def _dead_letter_changes(
        self,
        changes: list[RecordChange],
        category: str,
        message: str,
        correlation_id: str | None,
        attempts: int,
    ) -> None:
        letters = [
            DeadLetter(
                object_type=self.object_type,
                external_id=str(c.external_id),
                payload={
                    "id": c.external_id,
                    "idProperty": self.id_property,
                    "properties": dict(c.properties),
                },
                category=category,
                message=message,
                correlation_id=correlation_id,
                attempts=attempts,
                as_of=c.as_of,
            )
            for c in changes
        ]
        self._emit_dead_letters(letters)

    def _emit_dead_letters(self, letters: list[DeadLetter]) -> None:
        if not letters:
            return
        self.sink.record_dead_letters(letters, self.run_id)
        self.report.records_dead_lettered += len(letters)
        for letter in letters[:5]:
            log.warning(
                "dead letter %s %s: %s %s",
                self.object_type,
                mask_email(letter.external_id),
                letter.category,
                letter.message,
            )
        if len(letters) > 5:
            log.warning("… and %d more dead letters (%s)", len(letters) - 5, letters[0].category)


def _summary(response: BatchResponse) -> str | None:
    if not response.errors and response.results:
        return None
    if not response.errors:
        return "2xx without results or errors"
    return f"{len(response.errors)} per-input errors"


async def push_changes(
    client: HubSpotClient,
    *,
    object_type: str,
    id_property: str,
    changes: Iterable[list[RecordChange]],
    sink: PushSink,
    run_id: str,
    config: PushConfig | None = None,
) -> PushReport:
    """Write ``changes`` to HubSpot with ``batch/upsert`` by ``id_property``; see the module doc.

    Raises :class:`PushAborted` (with the partial report) on 401/403 or a request HubSpot would
    reject for every record; everything else ends in the sink (confirmed or dead-lettered).
    """
    push = _Push(client, object_type, id_property, sink, run_id, config or PushConfig())
    started = time.perf_counter()
    error: HubSpotError | None = None
    # this push's calls only: the next mapping's setup may share the client meanwhile
    with counting_calls() as counted:
        try:
            await push.run(changes)
        except (HubSpotAuthError, HubSpotConfigError) as exc:
            error = exc
    report = push.report
    report.duration_s = time.perf_counter() - started
    report.calls = counted.calls
    report.write_calls = counted.write_calls
    report.retries += counted.retries
    report.rate_limited = counted.rate_limited
    report.records_per_s = report.records_ok / report.duration_s if report.duration_s else 0.0
    report.stopped_reason = push.daily_stop
    if error is not None:
        report.stopped_reason = str(error)
        raise PushAborted(f"push of {object_type} stopped: {error}", report, error.error) from None
    log.info(
        "push %s %s: %d in, %d sent, %d ok (%d created), %d dead-lettered, %d calls, %d 429s",
        run_id,
        object_type,
        report.records_in,
        report.records_sent,
        report.records_ok,
        report.records_created,
        report.records_dead_lettered,
        report.calls,
        report.rate_limited,
    )
    return report


def push_changes_blocking(
    client: HubSpotClient,
    *,
    object_type: str,
    id_property: str,
    changes: Iterable[list[RecordChange]],
    sink: PushSink,
    run_id: str,
    config: PushConfig | None = None,
) -> PushReport:
    """:func:`push_changes` for synchronous callers (runs its own event loop)."""
    return asyncio.run(
        push_changes(
            client,
            object_type=object_type,
            id_property=id_property,
            changes=changes,
            sink=sink,
            run_id=run_id,
            config=config,
        )
    )


__all__ = [
    "PushAborted",
    "PushConfig",
    "PushReport",
    "build_batches",
    "canonical_key",
    "push_changes",
    "push_changes_blocking",
    "trace_id",
]
