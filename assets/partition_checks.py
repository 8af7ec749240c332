"""Asset-check results per partition, so a range run's checks show real results in the UI.

A check that returns one ``AssetCheckResult`` in a single-run backfill records one evaluation
with no partition, and Dagster's UI then shows every partition of the range as "Skipped".
Yielding one ``AssetCheckEvaluation`` per partition, each pointing at that partition's latest
materialization, gives each day its own status (Dagster 1.13; ``AssetCheckEvaluation`` has a
``partition`` field, ``AssetCheckResult`` has none).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

# Not re-exported as dg.*; pinned with dagster in requirements.lock and exercised by the
# per-partition check tests (tests/dagster_ingest, tests/dagster_sync).
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)


@dataclass(frozen=True)
class Verdict:
    """One partition's check outcome."""

    passed: bool
    description: str
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.WARN
    metadata: Mapping[str, Any] = field(default_factory=dict)


def latest_materialization(
    instance: dg.DagsterInstance, key: dg.AssetKey, partition: str
) -> AssetCheckEvaluationTargetMaterializationData | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records
    if not records:
        return None
    r = records[0]
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=r.storage_id, run_id=r.run_id, timestamp=r.timestamp
    )


def evaluations(
    instance: dg.DagsterInstance,
    key: dg.AssetKey,
    check_name: str,
    verdicts: Mapping[str, Verdict],
    *,
    blocking: bool = False,
) -> Iterator[dg.AssetCheckEvaluation]:
    """One evaluation per partition (sorted), each targeting that partition's materialization."""
    for partition, v in sorted(verdicts.items()):
        yield dg.AssetCheckEvaluation(
            asset_key=key,
            check_name=check_name,
            passed=v.passed,
            severity=v.severity,
            description=v.description,
            metadata=dict(v.metadata),
            partition=partition,
            blocking=blocking,
            target_materialization_data=latest_materialization(instance, key, partition),
        )
