"""Materialize the ingestion assets and checks with dagster on generated sample data."""

import warnings
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest

from assets.ingestion import (
    DAILY_INGESTION_ASSETS,
    INGESTION_ASSETS,
    INGESTION_CHECKS,
    MASTER_INGESTION_ASSETS,
)
from resources.warehouse import WarehouseResource
from spokesync.ingest.contract import MASTER_SOURCES, PARTITIONED_SOURCES
from spokesync.warehouse import master_path, partition_path
from tests.dagster_ingest.conftest import DAYS, planted

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)


def _resources(tmp_path: Path, landing: Path, **kw: float) -> dict[str, object]:
    return {"warehouse": WarehouseResource(home=str(tmp_path / "home"), landing=str(landing), **kw)}


def _checks_for(*sources: str) -> list[dg.AssetChecksDefinition]:
    return [c for c in INGESTION_CHECKS if next(iter(c.check_keys)).asset_key.path[0] in sources]


def _checks(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }


def test_every_daily_asset_materializes_two_clean_partitions_with_exact_counts(
    tmp_path: Path, landing: Path
) -> None:
    resources = _resources(tmp_path, landing, quarantine_error_rate=0.5)
    warehouse = tmp_path / "home" / "warehouse"
    for day in DAYS[:2]:
        result = dg.materialize(
            [*DAILY_INGESTION_ASSETS, *_checks_for(*PARTITIONED_SOURCES)],
            partition_key=day,
            resources=resources,
            selection=dg.AssetSelection.assets(*DAILY_INGESTION_ASSETS),
        )
        assert result.success
        for source in PARTITIONED_SOURCES:
            (mat,) = result.asset_materializations_for_node(source)
            meta = {k: v.value for k, v in mat.metadata.items()}
            assert mat.partition == day
            assert meta["rows_valid"] + meta["rows_quarantined"] == meta["rows_read"]
            assert meta["rows_quarantined"] == planted(landing, source, day)
            assert meta["dagster/row_count"] == meta["rows_valid"]
            assert (
                pq.read_metadata(partition_path(warehouse, source, day)).num_rows
                == (meta["rows_valid"])
            )
        checks = _checks(result)
        assert len(checks) == 2 * len(PARTITIONED_SOURCES)
        drift = checks[("product_usage", "schema_drift")]
        assert drift.passed is (day != "2026-01-02")  # day 2 lands an extra column
        assert checks[("invoices", "schema_drift")].passed


def test_missing_required_column_day_blocks_with_error_and_reports_drift(
    tmp_path: Path, landing: Path
) -> None:
    invoices = next(a for a in DAILY_INGESTION_ASSETS if a.key.path == ["invoices"])
    # The ERP export of that day lost its (required) currency column.
    export = landing / "erp" / "invoices" / "invoices_2026-01-03.csv"
    frame = pd.read_csv(export, dtype=str, keep_default_na=False)
    frame.drop(columns=["currency"]).to_csv(export, index=False)
    result = dg.materialize(
        [invoices, *_checks_for("invoices")],
        partition_key="2026-01-03",
        resources=_resources(tmp_path, landing),
        raise_on_error=False,
    )
    evaluations = _checks(result)
    rate = evaluations[("invoices", "quarantine_rate")]
    assert not rate.passed and rate.severity == dg.AssetCheckSeverity.ERROR
    assert rate.metadata["quarantine_rate"].value == 1.0
    drift = evaluations[("invoices", "schema_drift")]
    assert not drift.passed and drift.severity == dg.AssetCheckSeverity.ERROR
    assert drift.metadata["columns_missing"].value == ["currency", "paid_at"]
    assert (rate.partition, drift.partition) == ("2026-01-03", "2026-01-03")
    assert not result.success  # the blocking check fails the run


@pytest.mark.parametrize(
    ("warn", "error", "passed", "severity"),
    [
        (0.5, 0.9, True, dg.AssetCheckSeverity.WARN),
        (0.001, 0.9, False, dg.AssetCheckSeverity.WARN),
        (0.001, 0.002, False, dg.AssetCheckSeverity.ERROR),
    ],
)
def test_quarantine_rate_thresholds_are_configurable(
    tmp_path: Path, landing: Path, warn: float, error: float, passed: bool, severity: object
) -> None:
    usage = next(a for a in DAILY_INGESTION_ASSETS if a.key.path == ["product_usage"])
    rate_check = next(
        c
        for c in _checks_for("product_usage")
        if next(iter(c.check_keys)).name == "quarantine_rate"
    )
    result = dg.materialize(
        [usage, rate_check],
        partition_key="2026-01-01",
        resources=_resources(
            tmp_path, landing, quarantine_warn_rate=warn, quarantine_error_rate=error
        ),
        raise_on_error=False,
    )
    (evaluation,) = result.get_asset_check_evaluations()
    expected_rate = planted(landing, "product_usage", "2026-01-01") / (
        planted(landing, "product_usage", "2026-01-01") + 1500
    )
    assert evaluation.metadata["quarantine_rate"].value == pytest.approx(expected_rate, abs=1e-6)
    assert evaluation.passed is passed and evaluation.severity == severity
    assert result.success is (passed or severity == dg.AssetCheckSeverity.WARN)


def test_master_assets_materialize(tmp_path: Path, landing: Path) -> None:
    result = dg.materialize(
        [*MASTER_INGESTION_ASSETS, *_checks_for(*MASTER_SOURCES)],
        resources=_resources(tmp_path, landing),
    )
    assert result.success
    evaluations = _checks(result)
    for source in MASTER_SOURCES:
        (mat,) = result.asset_materializations_for_node(source)
        meta = {k: v.value for k, v in mat.metadata.items()}
        assert meta["rows_quarantined"] == planted(landing, source, "master")
        assert meta["rows_normalised"] == planted(landing, source, "master", "normalised")
        path = master_path(tmp_path / "home" / "warehouse", source)
        assert pq.read_metadata(path).num_rows == meta["rows_valid"]
        rate = meta["rows_quarantined"] / meta["rows_read"]
        assert 0.01 < rate <= 0.05  # 3% planted: a warning, not a blocking error
        check = evaluations[(source, "quarantine_rate")]
        assert (check.passed, check.severity) == (False, dg.AssetCheckSeverity.WARN)
        assert evaluations[(source, "schema_drift")].passed


def test_single_run_backfill_records_each_days_own_figures_and_check_results(
    tmp_path: Path, landing: Path
) -> None:
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [*INGESTION_ASSETS, *_checks_for(*PARTITIONED_SOURCES)],
            instance=instance,
            resources=_resources(tmp_path, landing, quarantine_error_rate=1.0),
            selection=dg.AssetSelection.assets(*DAILY_INGESTION_ASSETS),
            tags={
                "dagster/asset_partition_range_start": DAYS[0],
                "dagster/asset_partition_range_end": DAYS[-1],
            },
        )
        assert result.success
        warehouse = tmp_path / "home" / "warehouse"
        storage_ids = {}
        for source in PARTITIONED_SOURCES:
            mats = result.asset_materializations_for_node(source)
            assert sorted(m.partition for m in mats) == DAYS
            for mat in mats:
                meta = {k: v.value for k, v in mat.metadata.items()}
                day = mat.partition
                # Each day its own figures, not the range's total on every day.
                assert meta["rows_quarantined"] == planted(landing, source, day)
                assert (
                    meta["rows_valid"]
                    == pq.read_metadata(partition_path(warehouse, source, day)).num_rows
                )
                assert meta["dagster/row_count"] == meta["rows_valid"]
                assert meta["range_rows_quarantined"] == sum(
                    planted(landing, source, d) for d in DAYS
                )
            for day in DAYS:
                (record,) = instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=dg.AssetKey(source), asset_partitions=[day]),
                    limit=1,
                ).records
                storage_ids[(source, day)] = record.storage_id
    # One evaluation per check and day, each pointing at that day's materialization (what
    # the UI needs to show the day's status instead of "Skipped").
    evaluations = {
        (e.asset_key.to_user_string(), e.check_name, e.partition): e
        for e in result.get_asset_check_evaluations()
    }
    assert len(evaluations) == 2 * len(PARTITIONED_SOURCES) * len(DAYS)
    for (source, _, day), e in evaluations.items():
        assert e.target_materialization_data.storage_id == storage_ids[(source, day)]
    # Day 3's invoices export lost its optional paid_at column: the rows load, drift warns.
    for day in DAYS:
        drift = evaluations[("invoices", "schema_drift", day)]
        assert drift.passed is (day != "2026-01-03")
        usage = evaluations[("product_usage", "schema_drift", day)]
        assert usage.passed is (day != "2026-01-02")
    invoice_drift = evaluations[("invoices", "schema_drift", "2026-01-03")]
    assert invoice_drift.metadata["columns_missing"].value == ["paid_at"]
    assert (invoice_drift.passed, invoice_drift.severity) == (False, dg.AssetCheckSeverity.WARN)
    drift = evaluations[("product_usage", "schema_drift", "2026-01-02")]
    assert drift.metadata["columns_added"].value == ["client_version"]
    rate = evaluations[("support_tickets", "quarantine_rate", "2026-01-02")]
    assert rate.metadata["rows_quarantined"].value == planted(landing, "support_tickets", DAYS[1])
