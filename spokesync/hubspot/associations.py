"""Associations through the v4 batch endpoint: many record pairs per call, idempotent.

The caller resolves both ends to HubSpot record ids (the snapshot knows them after the push);
pairs are deduplicated and sent ``batch_size`` (≤ 2,000) to a call. Per-pair errors of a 207 and
failed calls are returned, not raised, so the run carries on; 401/403 and DAILY still raise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from spokesync.hubspot.client import HubSpotClient
from spokesync.hubspot.errors import RetriesExhausted
from spokesync.hubspot.redact import get_logger

log = get_logger(__name__)

ASSOCIATION_BATCH_LIMIT = 2000


@dataclass
class AssociationReport:
    from_type: str
    to_type: str
    pairs_in: int = 0
    pairs_sent: int = 0
    pairs_ok: int = 0
    calls: int = 0
    errors: list[str] = field(default_factory=list)


async def associate(
    client: HubSpotClient,
    *,
    from_type: str,
    to_type: str,
    pairs: Iterable[tuple[str, str]],
    association_type_id: int,
    category: str = "HUBSPOT_DEFINED",
    run_id: str,
    batch_size: int = ASSOCIATION_BATCH_LIMIT,
) -> AssociationReport:
    """Create ``from_id → to_id`` associations of one type; see the module doc."""
    if not 1 <= batch_size <= ASSOCIATION_BATCH_LIMIT:
        raise ValueError(f"batch_size must be 1..{ASSOCIATION_BATCH_LIMIT}, got {batch_size}")
    report = AssociationReport(from_type, to_type)
    unique: dict[tuple[str, str], None] = {}
    for pair in pairs:
        report.pairs_in += 1
        unique[(str(pair[0]), str(pair[1]))] = None
    ordered = list(unique)
    types = [{"associationCategory": category, "associationTypeId": association_type_id}]
    for seq, start in enumerate(range(0, len(ordered), batch_size), start=1):
        chunk = ordered[start : start + batch_size]
        inputs = [{"from": {"id": f}, "to": {"id": t}, "types": types} for f, t in chunk]
        report.pairs_sent += len(chunk)
        report.calls += 1
        try:
            response = await client.batch_create_associations(
                from_type, to_type, inputs, request_id=f"{run_id}-assoc-{to_type}-{seq}"
            )
        except RetriesExhausted as exc:
            report.errors.append(str(exc))
            continue
        if not response.response.ok:
            report.errors.append(response.response.error().short())
            continue
        report.pairs_ok += len(response.results)
        report.errors += [e.short() for e in response.errors]
    if report.errors:
        log.warning(
            "associations %s→%s: %d errors, first: %s",
            from_type,
            to_type,
            len(report.errors),
            report.errors[0],
        )
    return report
