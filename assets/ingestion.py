"""Ingestion assets: one per source, each a thin call into :mod:`spokesync.ingest`.

Daily sources are partitioned by day and back-fill in a single run (the asset loops over
``context.partition_keys``); master data (accounts, users) is a full snapshot. Assets write the
warehouse themselves and return ``MaterializeResult`` (no IO manager). Checks read the report
each ingestion leaves in the warehouse, so they evaluate exactly what was loaded.
"""

import os
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta

import dagster as dg

from assets import partition_checks
from pipelines.partitions import daily_partitions
from resources.warehouse import WarehouseResource
from spokesync.hubspot.redact import is_personal
from spokesync.ingest import IngestReport
from spokesync.ingest.contract import MASTER_SOURCES, PARTITIONED_SOURCES, SOURCES, Column
from spokesync.ingest.contract_docs import rule_text, type_label

GROUP = "ingestion"
# Who answers for these assets in the UI (Dagster owners: an email or "team:<name>").
OWNERS = [o.strip() for o in os.environ.get("SPOKESYNC_OWNERS", "team:revops").split(",") if o]
DAILY_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=48), warn_window=timedelta(hours=30)
)
MASTER_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(days=7), warn_window=timedelta(hours=30)
)


def _personal(column: Column) -> bool:
    """Whether a warehouse column holds personal data (as HubSpot's property of that name)."""
    return (
        column.normalise == "email"
        or is_personal(column.name)
        or is_personal(column.name.replace("_", ""))
    )


def _column_schema(source: str) -> dg.TableSchema:
    """The contract's columns, each with its type, meaning and rules (as in docs/sources.md)."""
    spec = SOURCES[source]
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                c.name,
                type_label(c),
                description=rule_text(spec, c).replace("**", ""),
                constraints=dg.TableColumnConstraints(
                    nullable=c.nullable, unique=c.name == spec.key
                ),
                tags={"pii": str(_personal(c)).lower()},
            )
            for c in spec.columns
        ]
    )


def _description(source: str, what: str) -> str:
    spec = SOURCES[source]
    return " ".join(
        p
        for p in (
            what,
            spec.doc,
            f"Landing format {spec.format}; key `{spec.key}`.",
            "Columns, types and rules: docs/sources.md.",
        )
        if p
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
        owners=OWNERS,
        tags={"source": source, "landing_format": SOURCES[source].format},
        metadata={"dagster/column_schema": _column_schema(source)},
        description=_description(source, f"Validated {source} rows, one Parquet file per day."),
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
            # Each day its own figures; a MaterializeResult's metadata would be copied to
            # every partition of a range run.
            context.add_asset_metadata(_metadata([report]), partition_key=day)
            reports.append(report)
        if len(reports) == 1:
            return dg.MaterializeResult()
        # The run's totals, under their own names, on each day of the range.
        totals = _metadata(reports)
        return dg.MaterializeResult(
            metadata={
                "range_partitions": len(reports),
                "range_rows_read": totals["rows_read"],
                "range_rows_valid": totals["rows_valid"],
                "range_rows_quarantined": totals["rows_quarantined"],
                "range_preview": totals["preview"],
            }
        )

    return _ingest


def _master_asset(source: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=source,
        group_name=GROUP,
        freshness_policy=MASTER_FRESHNESS,
        kinds={"parquet", "pandera"},
        owners=OWNERS,
        tags={"source": source, "landing_format": SOURCES[source].format},
        metadata={"dagster/column_schema": _column_schema(source)},
        description=_description(
            source, f"Validated {source} master data (full snapshot, replaced on each load)."
        ),
    )
    def _ingest(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        report = warehouse.ingest_master(source, context.run.run_id)
        return dg.MaterializeResult(metadata=_metadata([report]))

    return _ingest


def _rate_verdict(
    source: str, part: str | None, warehouse: WarehouseResource
) -> partition_checks.Verdict:
    report = warehouse.last_report(source, part)
    if report is None:
        return partition_checks.Verdict(
            False, f"{source} {part or 'master'} was never ingested", dg.AssetCheckSeverity.ERROR
        )
    rate = report.quarantine_rate
    if rate > warehouse.quarantine_error_rate:
        severity, passed = dg.AssetCheckSeverity.ERROR, False
    elif rate > warehouse.quarantine_warn_rate:
        severity, passed = dg.AssetCheckSeverity.WARN, False
    else:
        severity, passed = dg.AssetCheckSeverity.WARN, True
    return partition_checks.Verdict(
        passed,
        f"{rate:.2%} of {part or 'master'}'s rows quarantined "
        f"({report.rows_quarantined:,} of {report.rows_read:,})",
        severity,
        {
            "quarantine_rate": round(rate, 6),
            "rows_read": report.rows_read,
            "rows_quarantined": report.rows_quarantined,
            "warn_above": warehouse.quarantine_warn_rate,
            "error_above": warehouse.quarantine_error_rate,
        },
    )


def _drift_verdict(
    source: str, part: str | None, warehouse: WarehouseResource
) -> partition_checks.Verdict:
    report = warehouse.last_report(source, part)
    if report is None:
        return partition_checks.Verdict(
            False, f"{source} {part or 'master'} was never ingested", dg.AssetCheckSeverity.ERROR
        )
    added, missing = list(report.columns_added), list(report.columns_missing)
    missing_required = bool(set(missing) & set(SOURCES[source].required_columns))
    return partition_checks.Verdict(
        not added and not missing,
        "no drift"
        if not added and not missing
        else f"added {added or '[]'}; missing {missing or '[]'}"
        + (" (required: every row quarantined)" if missing_required else ""),
        dg.AssetCheckSeverity.ERROR if missing_required else dg.AssetCheckSeverity.WARN,
        {"columns_added": added, "columns_missing": missing},
    )


def _source_check(
    source: str,
    partitioned: bool,
    name: str,
    verdict: Callable[[str, str | None, WarehouseResource], partition_checks.Verdict],
    description: str,
    blocking: bool,
) -> dg.AssetChecksDefinition:
    key = dg.AssetKey(source)
    if not partitioned:

        @dg.asset_check(asset=key, name=name, blocking=blocking, description=description)
        def _master(warehouse: WarehouseResource) -> dg.AssetCheckResult:
            v = verdict(source, None, warehouse)
            return dg.AssetCheckResult(
                passed=v.passed,
                severity=v.severity,
                metadata=dict(v.metadata),
                description=v.description,
            )

        return _master

    @dg.asset_check(
        asset=key,
        name=name,
        blocking=blocking,
        partitions_def=daily_partitions,
        description=description,
    )
    def _daily(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
        # One evaluation per day of the run, so a range run shows each day's own result.
        verdicts = {day: verdict(source, day, warehouse) for day in context.partition_keys}
        yield from partition_checks.evaluations(
            context.instance, key, name, verdicts, blocking=blocking
        )
        yield dg.Output(None)

    return _daily


def _rate_check(source: str, partitioned: bool) -> dg.AssetChecksDefinition:
    return _source_check(
        source,
        partitioned,
        "quarantine_rate",
        _rate_verdict,
        "Share of rows quarantined: WARN above quarantine_warn_rate (1%), blocking "
        "ERROR above quarantine_error_rate (5%); configurable on the warehouse resource.",
        blocking=True,
    )


def _drift_check(source: str, partitioned: bool) -> dg.AssetChecksDefinition:
    return _source_check(
        source,
        partitioned,
        "schema_drift",
        _drift_verdict,
        "Landing columns vs the source contract: extra columns are dropped (WARN); "
        "a missing required column quarantines every row of that file (ERROR).",
        blocking=False,
    )


DAILY_INGESTION_ASSETS = [_daily_asset(s) for s in PARTITIONED_SOURCES]
MASTER_INGESTION_ASSETS = [_master_asset(s) for s in MASTER_SOURCES]
INGESTION_ASSETS: list[dg.AssetsDefinition] = [*MASTER_INGESTION_ASSETS, *DAILY_INGESTION_ASSETS]
INGESTION_CHECKS: list[dg.AssetChecksDefinition] = [
    check(s, s in PARTITIONED_SOURCES)
    for s in (*MASTER_SOURCES, *PARTITIONED_SOURCES)
    for check in (_rate_check, _drift_check)
]
