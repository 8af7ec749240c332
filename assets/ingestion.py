"""Ingestion assets: one per source, each a thin call into :mod:`spokesync.ingest`.

Daily sources are partitioned by day and back-fill in a single run (the asset loops over
``context.partition_keys``); master data (accounts, users) is a full snapshot. Assets write the
warehouse themselves and return ``MaterializeResult`` (no IO manager). Checks read the report
each ingestion leaves in the warehouse, so they evaluate exactly what was loaded.
"""

from collections.abc import Sequence
from datetime import timedelta

import dagster as dg

from pipelines.partitions import daily_partitions
from resources.warehouse import WarehouseResource
from spokesync.ingest import IngestReport
from spokesync.ingest.contract import MASTER_SOURCES, PARTITIONED_SOURCES, SOURCES

GROUP = "ingestion"
DAILY_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=48), warn_window=timedelta(hours=30)
)
MASTER_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(days=7), warn_window=timedelta(hours=30)
)


def _column_schema(source: str) -> dg.TableSchema:
    spec = SOURCES[source]
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                c.name,
                c.kind,
                constraints=dg.TableColumnConstraints(
                    nullable=c.nullable, unique=c.name == spec.key
                ),
            )
            for c in spec.columns
        ]
    )


def _metadata(reports: Sequence[IngestReport]) -> dict[str, object]:
    read = sum(r.rows_read for r in reports)
    valid = sum(r.rows_valid for r in reports)
    quarantined = sum(r.rows_quarantined for r in reports)
    meta: dict[str, object] = {
        "dagster/row_count": valid,
        "rows_read": read,
        "rows_valid": valid,
        "rows_quarantined": quarantined,
        "rows_normalised": sum(r.rows_normalised for r in reports),
        "quarantine_rate": round(quarantined / read, 6) if read else 0.0,
        "columns_added": sorted({c for r in reports for c in r.columns_added}),
        "columns_missing": sorted({c for r in reports for c in r.columns_missing}),
        "files": dg.MetadataValue.json([f for r in reports for f in r.files]),
        "duration_s": round(sum(r.duration_s for r in reports), 3),
    }
    if len(reports) == 1:
        meta["preview"] = dg.MetadataValue.md(reports[0].preview_markdown)
    else:
        rows = [
            f"| {r.partition} | {r.rows_read} | {r.rows_valid} | {r.rows_quarantined} | "
            f"{r.quarantine_rate:.2%} |"
            for r in reports
        ]
        table = "| partition | read | valid | quarantined | rate |\n|---|---|---|---|---|\n"
        meta["preview"] = dg.MetadataValue.md(
            table + "\n".join(rows) + "\n\n" + reports[-1].preview_markdown
        )
    return meta


def _daily_asset(source: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=source,
        group_name=GROUP,
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        freshness_policy=DAILY_FRESHNESS,
        kinds={"parquet", "pandera"},
        metadata={"dagster/column_schema": _column_schema(source)},
        description=f"Validated {source} rows, one Parquet file per day (docs/sources.md).",
    )
    def _ingest(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        reports = []
        days = context.partition_keys  # a backfill range uses every core (ingest_partitions)
        for day, report in zip(
            days, warehouse.ingest_partitions(source, days, context.run.run_id), strict=True
        ):
            context.log.info(
                f"{source} {day}: {report.rows_read} read, {report.rows_valid} valid, "
                f"{report.rows_quarantined} quarantined"
            )
            reports.append(report)
        return dg.MaterializeResult(metadata=_metadata(reports))

    return _ingest


def _master_asset(source: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=source,
        group_name=GROUP,
        freshness_policy=MASTER_FRESHNESS,
        kinds={"parquet", "pandera"},
        metadata={"dagster/column_schema": _column_schema(source)},
        description=f"Validated {source} master data (full snapshot, replaced on each load).",
    )
    def _ingest(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        report = warehouse.ingest_master(source, context.run.run_id)
        return dg.MaterializeResult(metadata=_metadata([report]))

    return _ingest


def _partitions_checked(
    context: dg.AssetCheckExecutionContext, partitioned: bool
) -> list[str | None]:
    # A master-data check in a partitioned run (e.g. sync_job) still checks the one snapshot.
    if partitioned and (context.has_partition_key or context.has_partition_key_range):
        return list(context.partition_keys)
    return [None]


def _rate_check(source: str, partitioned: bool) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=source,
        name="quarantine_rate",
        blocking=True,
        partitions_def=daily_partitions if partitioned else None,
        description="Share of rows quarantined: WARN above quarantine_warn_rate (1%), blocking "
        "ERROR above quarantine_error_rate (5%); configurable on the warehouse resource.",
    )
    def _check(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> dg.AssetCheckResult:
        rates: dict[str, float] = {}
        for part in _partitions_checked(context, partitioned):
            report = warehouse.last_report(source, part)
            if report is None:
                return dg.AssetCheckResult(
                    passed=False, description=f"{source} {part or 'master'} was never ingested"
                )
            rates[part or "master"] = report.quarantine_rate
        worst_part, worst = max(rates.items(), key=lambda kv: kv[1])
        meta = {
            "quarantine_rate": round(worst, 6),
            "worst_partition": worst_part,
            "warn_above": warehouse.quarantine_warn_rate,
            "error_above": warehouse.quarantine_error_rate,
            "rates": dg.MetadataValue.json({k: round(v, 6) for k, v in rates.items()}),
        }
        if worst > warehouse.quarantine_error_rate:
            severity, passed = dg.AssetCheckSeverity.ERROR, False
        elif worst > warehouse.quarantine_warn_rate:
            severity, passed = dg.AssetCheckSeverity.WARN, False
        else:
            severity, passed = dg.AssetCheckSeverity.WARN, True
        return dg.AssetCheckResult(
            passed=passed,
            severity=severity,
            metadata=meta,
            description=f"{worst:.2%} of {worst_part}'s rows quarantined",
        )

    return _check


def _drift_check(source: str, partitioned: bool) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=source,
        name="schema_drift",
        partitions_def=daily_partitions if partitioned else None,
        description="Landing columns vs the source contract: extra columns are dropped (WARN); "
        "a missing required column quarantines every row of that file (ERROR).",
    )
    def _check(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> dg.AssetCheckResult:
        added: dict[str, list[str]] = {}
        missing: dict[str, list[str]] = {}
        for part in _partitions_checked(context, partitioned):
            report = warehouse.last_report(source, part)
            if report is None:
                return dg.AssetCheckResult(
                    passed=False, description=f"{source} {part or 'master'} was never ingested"
                )
            if report.columns_added:
                added[part or "master"] = report.columns_added
            if report.columns_missing:
                missing[part or "master"] = report.columns_missing
        required = set(SOURCES[source].required_columns)
        missing_required = any(set(cols) & required for cols in missing.values())
        return dg.AssetCheckResult(
            passed=not added and not missing,
            severity=dg.AssetCheckSeverity.ERROR
            if missing_required
            else dg.AssetCheckSeverity.WARN,
            metadata={
                "columns_added": dg.MetadataValue.json(added),
                "columns_missing": dg.MetadataValue.json(missing),
            },
            description="no drift"
            if not added and not missing
            else f"added {added or '{}'}; missing {missing or '{}'}",
        )

    return _check


DAILY_INGESTION_ASSETS = [_daily_asset(s) for s in PARTITIONED_SOURCES]
MASTER_INGESTION_ASSETS = [_master_asset(s) for s in MASTER_SOURCES]
INGESTION_ASSETS: list[dg.AssetsDefinition] = [*MASTER_INGESTION_ASSETS, *DAILY_INGESTION_ASSETS]
INGESTION_CHECKS: list[dg.AssetChecksDefinition] = [
    check(s, s in PARTITIONED_SOURCES)
    for s in (*MASTER_SOURCES, *PARTITIONED_SOURCES)
    for check in (_rate_check, _drift_check)
]
