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


def _unique(pairs: Iterable[Pair], report: AssociationReport) -> list[Pair]:
    unique: dict[Pair, None] = {}
    for pair in pairs:
        report.pairs_in += 1
        unique[(str(pair[0]), str(pair[1]))] = None
    return list(unique)


def _named_ids(error: Any) -> set[str]:
    """Record ids a per-pair error names (``context.INVALID_OBJECT_IDS``, ``context.ids``)."""
    return {i for values in error.context.values() for i in values}


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
    if not 1 <= batch_size <= ASSOCIATION_BATCH_LIMIT:
        raise ValueError(f"batch_size must be 1..{ASSOCIATION_BATCH_LIMIT}, got {batch_size}")
    report = AssociationReport(from_type, to_type)
    ordered = _unique(pairs, report)
    report.pairs_sent = len(ordered)
    types = [{"associationCategory": category, "associationTypeId": association_type_id}]
    seq = itertools.count(1)
    gate = asyncio.Semaphore(max(1, concurrency))

    async def chunk(waiting: list[Pair]) -> None:
        async with gate:
            await _send_chunk(waiting)

    async def _send_chunk(waiting: list[Pair]) -> None:
        for send in range(1, confirm_attempts + 1):
            n = next(seq)
            inputs = [{"from": {"id": f}, "to": {"id": t}, "types": types} for f, t in waiting]
            report.calls += 1
            try:
                response = await client.batch_create_associations(
                    from_type,
                    to_type,
                    inputs,
                    request_id=f"{run_id}-assoc-{from_type}-{to_type}-{n}",
                )
            except RetriesExhausted as exc:
                report.errors.append(str(exc))
                return
            if not response.response.ok:
                report.errors.append(response.response.error().short())
                return
            asked = set(waiting)
            for result in response.results:
                pair = (str(result.get("fromObjectId")), str(result.get("toObjectId")))
                if pair in asked:
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
            if send < confirm_attempts:
                log.warning(
                    "%s-assoc-%s-%s-%s: HTTP %s confirmed not %d pairs; sending them again",
                    run_id,
                    from_type,
                    to_type,
                    n,
                    response.status_code,
                    len(waiting),
                )
        report.unconfirmed += len(waiting)
        report.errors.append(
            f"NOT_CONFIRMED: HubSpot answered 2xx without a result for {len(waiting)} "
            f"{from_type}→{to_type} pairs after {confirm_attempts} sends; the next run "
            "sends them again"
        )

    tasks = [
        asyncio.ensure_future(chunk(ordered[start : start + batch_size]))
        for start in range(0, len(ordered), batch_size)
    ]
    try:
        await asyncio.gather(*tasks)
    except BaseException:  # 401/403, DAILY: stop the others, then raise
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    report.pairs_ok = len(report.confirmed)
    if report.errors:
        log.warning(
            "associations %s→%s: %d errors, first: %s",
            from_type,
            to_type,
            len(report.errors),
            report.errors[0],
        )
    return report


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
