"""Associations through the v4 batch endpoints: many record pairs per call, idempotent.

The caller resolves both ends to HubSpot record ids (the snapshot knows them after the push);
pairs are deduplicated and sent ``batch_size`` (≤ 2,000) to a call.

Only what HubSpot confirmed counts: a ``batch/create`` pair is confirmed when a result names
it (``fromObjectId``/``toObjectId``); a ``batch/labels/archive`` chunk when HubSpot answers its
documented 204. A 2xx that confirms nothing (no results and no errors, or results that leave
pairs out) is a failure: those pairs are sent again, up to ``confirm_attempts`` sends, and then
reported as not confirmed, so the caller leaves them out of the association snapshot and the
next run tries again. Both calls are idempotent in HubSpot (re-creating a link or removing a
missing one is a no-op), so re-sending is safe.

Per-pair errors of a 207, failed calls and exhausted retries are returned in the report, not
raised, so the run carries on; 401/403 and DAILY still raise.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from spokesync.hubspot.client import HubSpotClient
from spokesync.hubspot.errors import RetriesExhausted
from spokesync.hubspot.redact import get_logger

log = get_logger(__name__)

ASSOCIATION_BATCH_LIMIT = 2000
CONFIRM_ATTEMPTS = 3  # sends of a pair whose 2xx answer neither confirmed nor rejected it
CONCURRENCY = 4  # association calls in flight (2,000 pairs each)

Pair = tuple[str, str]


@dataclass
class AssociationReport:
    """What one association call sequence did; ``confirmed`` holds the pairs HubSpot confirmed."""

    from_type: str
    to_type: str
    pairs_in: int = 0
    pairs_sent: int = 0
    pairs_ok: int = 0
    calls: int = 0
    errors: list[str] = field(default_factory=list)
    confirmed: set[Pair] = field(default_factory=set)
    unconfirmed: int = 0  # pairs answered 2xx without a result, after every re-send

    @property
    def pairs_failed(self) -> int:
        return self.pairs_sent - self.pairs_ok


def _named_ids(error: Any) -> set[str]:
    """Record ids a per-pair error names (``context.INVALID_OBJECT_IDS``, ``context.ids``)."""
    return {i for values in error.context.values() for i in values}


class AssociationSender:
    """Creates ``from_id → to_id`` associations of one type as pairs are offered: duplicates
    dropped, every ``batch_size`` unique pairs one call, up to ``concurrency`` calls in flight
    (the client's rate limiter is the throttle), all into one :class:`AssociationReport`.
    :func:`associate` offers a whole list at once; the sync offers pairs while the push that
    creates their records is still running. The calls are the same either way: the chunks are
    cut from the sequence of unique pairs in the order offered."""

    def __init__(
        self,
        client: HubSpotClient,
        *,
        from_type: str,
        to_type: str,
        association_type_id: int,
        category: str = "HUBSPOT_DEFINED",
        run_id: str,
        batch_size: int = ASSOCIATION_BATCH_LIMIT,
        confirm_attempts: int = CONFIRM_ATTEMPTS,
        concurrency: int = CONCURRENCY,
        context: contextvars.Context | None = None,
    ) -> None:
        """``context``: the context the calls run in (default: the current one), so calls a
        push's sink starts are not counted as the push's (see ``client.counting_calls``)."""
        if not 1 <= batch_size <= ASSOCIATION_BATCH_LIMIT:
            raise ValueError(f"batch_size must be 1..{ASSOCIATION_BATCH_LIMIT}, got {batch_size}")
        self.client = client
        self._context = context
        self.report = AssociationReport(from_type, to_type)
        self.run_id = run_id
        self.batch_size = batch_size
        self.confirm_attempts = confirm_attempts
        self._types = [{"associationCategory": category, "associationTypeId": association_type_id}]
        self._seen: set[Pair] = set()
        self._buffer: list[Pair] = []
        self._seq = itertools.count(1)
        self._gate = asyncio.Semaphore(max(1, concurrency))
        self._tasks: list[asyncio.Future[None]] = []

    def offer(self, pair: Pair) -> None:
        """Send this pair (with the next ones: a call starts once ``batch_size`` are waiting)."""
        self.report.pairs_in += 1
        key = (str(pair[0]), str(pair[1]))
        if key in self._seen:
            return
        self._seen.add(key)
        self.report.pairs_sent += 1
        self._buffer.append(key)
        if len(self._buffer) == self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Start a call for the pairs waiting, however few."""
        if self._buffer:
            waiting, self._buffer = self._buffer, []
            loop = asyncio.get_running_loop()
            self._tasks.append(loop.create_task(self._chunk(waiting), context=self._context))

    def failed(self) -> BaseException | None:
        """The error a finished call raised (401/403, DAILY), if any."""
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                return task.exception()
        return None

    async def wait(self) -> AssociationReport:
        """Send what is waiting, wait for every call; raises what a call raised (the other
        calls are stopped first)."""
        self.flush()
        try:
            await asyncio.gather(*self._tasks)
        except BaseException:  # 401/403, DAILY: stop the others, then raise
            await self.cancel()
            raise
        report = self.report
        report.pairs_ok = len(report.confirmed)
        if report.errors:
            log.warning(
                "associations %s→%s: %d errors, first: %s",
                report.from_type,
                report.to_type,
                len(report.errors),
                report.errors[0],
            )
        return report

    async def cancel(self) -> None:
        """Stop the calls in flight (what HubSpot confirmed so far stays in the report)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.report.pairs_ok = len(self.report.confirmed)

    async def _chunk(self, waiting: list[Pair]) -> None:
        async with self._gate:
            await self._send_chunk(waiting)

    async def _send_chunk(self, waiting: list[Pair]) -> None:
        report, from_type, to_type = self.report, self.report.from_type, self.report.to_type
        for send in range(1, self.confirm_attempts + 1):
            n = next(self._seq)
            inputs = [
                {"from": {"id": f}, "to": {"id": t}, "types": self._types} for f, t in waiting
            ]
            report.calls += 1
            try:
                response = await self.client.batch_create_associations(
                    from_type,
                    to_type,
                    inputs,
                    request_id=f"{self.run_id}-assoc-{from_type}-{to_type}-{n}",
                )
            except RetriesExhausted as exc:
                report.errors.append(str(exc))
                return
            if not response.response.ok:
                report.errors.append(response.response.error().short())
                return
            # the pair as offered, not the one read from the answer: a first sync confirms
            # hundreds of thousands, and the offered ids are held anyway
            asked = {p: p for p in waiting}
            for result in response.results:
                pair = asked.get((str(result.get("fromObjectId")), str(result.get("toObjectId"))))
                if pair is not None:
                    report.confirmed.add(pair)
            rejected_ids: set[str] = set()
            for error in response.errors:
                report.errors.append(error.short())
                rejected_ids |= _named_ids(error)
            waiting = [
                p
                for p in waiting
                if p not in report.confirmed and not ({p[0], p[1]} & rejected_ids)
            ]
            if not waiting:
                return
            if send < self.confirm_attempts:
                log.warning(
                    "%s-assoc-%s-%s-%s: HTTP %s confirmed not %d pairs; sending them again",
                    self.run_id,
                    from_type,
                    to_type,
                    n,
                    response.status_code,
                    len(waiting),
                )
        report.unconfirmed += len(waiting)
        report.errors.append(
            f"NOT_CONFIRMED: HubSpot answered 2xx without a result for {len(waiting)} "
            f"{from_type}→{to_type} pairs after {self.confirm_attempts} sends; the next run "
            "sends them again"
        )


async def associate(
    client: HubSpotClient,
    *,
    from_type: str,
    to_type: str,
    pairs: Iterable[Pair],
    association_type_id: int,
    category: str = "HUBSPOT_DEFINED",
    run_id: str,
    batch_size: int = ASSOCIATION_BATCH_LIMIT,
    confirm_attempts: int = CONFIRM_ATTEMPTS,
    concurrency: int = CONCURRENCY,
) -> AssociationReport:
    """Create ``from_id → to_id`` associations of one type; see the module doc. Up to
    ``concurrency`` calls are in flight (the client's rate limiter is the throttle): one call
    at a time left a 300k-link run waiting a round trip per 2,000 links."""
    sender = AssociationSender(
        client,
        from_type=from_type,
        to_type=to_type,
        association_type_id=association_type_id,
        category=category,
        run_id=run_id,
        batch_size=batch_size,
        confirm_attempts=confirm_attempts,
        concurrency=concurrency,
    )
    for pair in pairs:
        sender.offer(pair)
    return await sender.wait()


@dataclass(frozen=True, slots=True)
class LabelArchive:
    """One association type to remove between one pair of HubSpot records."""

    from_id: str
    to_id: str
    association_type_id: int
    category: str


async def archive_labels(
    client: HubSpotClient,
    *,
    from_type: str,
    to_type: str,
    links: list[LabelArchive],
    run_id: str,
    batch_size: int = ASSOCIATION_BATCH_LIMIT,
    confirm_attempts: int = CONFIRM_ATTEMPTS,
) -> AssociationReport:
    """Remove only the given association types (``batch/labels/archive``), leaving labels people
    added. A chunk counts as removed when HubSpot answers 204; ``confirmed`` holds the
    ``(from_id, to_id)`` pairs of removed chunks."""
    report = AssociationReport(from_type, to_type, pairs_in=len(links), pairs_sent=len(links))
    for n, start in enumerate(range(0, len(links), batch_size), start=1):
        chunk = links[start : start + batch_size]
        inputs = [
            {
                "from": {"id": x.from_id},
                "to": {"id": x.to_id},
                "types": [
                    {"associationCategory": x.category, "associationTypeId": x.association_type_id}
                ],
            }
            for x in chunk
        ]
        for send in range(1, confirm_attempts + 1):
            report.calls += 1
            rid = f"{run_id}-unassoc-{from_type}-{to_type}-{n}" + (f"-s{send}" if send > 1 else "")
            try:
                response = await client.batch_archive_association_labels(
                    from_type, to_type, inputs, request_id=rid
                )
            except RetriesExhausted as exc:
                report.errors.append(str(exc))
                break
            if response.status_code == 204:
                report.confirmed.update((x.from_id, x.to_id) for x in chunk)
                break
            if not response.ok:
                report.errors.append(response.error().short())
                break
        else:
            report.unconfirmed += len(chunk)
            report.errors.append(
                f"NOT_CONFIRMED: HubSpot answered {from_type}→{to_type} labels/archive without "
                f"its 204 after {confirm_attempts} sends; the next run removes them again"
            )
    report.pairs_ok = len(report.confirmed)
    return report
