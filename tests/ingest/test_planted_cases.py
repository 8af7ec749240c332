"""Every planted case is caught exactly: counts per partition and the check each one fails."""

import json
from pathlib import Path

import pytest

from spokesync.ingest import ingest_master, ingest_partition, landed_partitions
from spokesync.ingest.contract import MASTER_SOURCES, PARTITIONED_SOURCES
from spokesync.sample_data.generator import load_manifest
from spokesync.sample_data.mess import NORMALISED_KINDS, QUARANTINE_KINDS
from spokesync.warehouse import connect

# One worker runs the module, so its messy sample is generated and ingested once, not once per
# worker (6-13 s each).
pytestmark = pytest.mark.xdist_group("planted_cases")
DAYS = [f"2026-01-0{i}" for i in range(1, 7)]
TARGETS = [(s, None) for s in MASTER_SOURCES] + [(s, d) for s in PARTITIONED_SOURCES for d in DAYS]


@pytest.fixture(scope="module")
def loaded(messy_landing: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    warehouse = tmp_path_factory.mktemp("wh")
    reports = {}
    for source, day in TARGETS:
        if day is None:
            reports[(source, day)] = ingest_master(source, messy_landing, warehouse, "run-1")
        else:
            reports[(source, day)] = ingest_partition(
                source, day, messy_landing, warehouse, "run-1"
            )
    return warehouse, reports


@pytest.mark.parametrize(("source", "day"), TARGETS)
def test_counts_match_the_planted_manifest(
    messy_landing: Path, loaded: tuple[Path, dict], source: str, day: str | None
) -> None:
    _, reports = loaded
    report = reports[(source, day)]
    manifest = load_manifest(messy_landing, source, day or "master")
    assert report.rows_valid + report.rows_quarantined == report.rows_read
    assert report.rows_quarantined == sum(e["outcome"] == "quarantined" for e in manifest)
    assert report.rows_normalised == sum(e["outcome"] == "normalised" for e in manifest)
    assert report.rows_quarantined > 0


def test_each_planted_row_is_quarantined_with_its_expected_check(
    messy_landing: Path, loaded: tuple[Path, dict]
) -> None:
    warehouse, _ = loaded
    con = connect(warehouse)
    rows = con.execute(
        "SELECT source, coalesce(partition, 'master'), file, row_number, failed_checks, error "
        "FROM quarantine"
    ).fetchall()
    got = {(r[0], r[1], r[2], r[3]): (json.loads(r[4]), r[5]) for r in rows}
    expected = [
        e
        for s, d in TARGETS
        for e in load_manifest(messy_landing, s, d or "master")
        if e["outcome"] == "quarantined"
    ]
    assert len(got) == len(rows) == len(expected)
    kinds_seen = set()
    for e in expected:
        checks, error = got[(e["source"], e["partition"], e["file"], e["row"])]
        assert any(c["check"].startswith(e["expected_check"]) for c in checks), (e, checks)
        if e["column"] is not None:
            assert any(c["column"] == e["column"] for c in checks), (e, checks)
        assert e["file"] in error and str(e["row"]) in error
        kinds_seen.add((e["source"], e["kind"]))
    planted_kinds = {(s, k) for s, kinds in QUARANTINE_KINDS.items() for k in kinds}
    assert planted_kinds <= kinds_seen  # every kind of bad row was exercised


def test_normalised_values_land_clean(loaded: tuple[Path, dict]) -> None:
    warehouse, _ = loaded
    con = connect(warehouse)
    messy_emails = con.execute(
        "SELECT count(*) FROM users WHERE email <> lower(trim(email))"
    ).fetchone()
    assert messy_emails == (0,)
    bad_domains = con.execute(
        "SELECT count(*) FROM accounts WHERE domain LIKE '%/%' OR domain LIKE 'www.%' "
        "OR domain <> lower(domain)"
    ).fetchone()
    assert bad_domains == (0,)
    assert set(NORMALISED_KINDS) == {"accounts", "users", "support_tickets"}


def test_warehouse_types_are_stable_across_partitions(loaded: tuple[Path, dict]) -> None:
    warehouse, _ = loaded
    con = connect(warehouse)
    types = {r[0]: r[1] for r in con.execute("DESCRIBE product_usage").fetchall()}
    assert types["occurred_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["quantity"] == "BIGINT"
    inv = {r[0]: r[1] for r in con.execute("DESCRIBE invoices").fetchall()}
    assert inv["invoice_date"] == "DATE" and inv["amount"] == "DECIMAL(38,9)"
    dupes = con.execute(
        "SELECT count(*) FROM (SELECT event_id FROM product_usage GROUP BY 1 HAVING count(*) > 1)"
    ).fetchone()
    assert dupes == (0,)
    assert "client_version" not in types


def test_landed_partitions_lists_generated_days(messy_landing: Path) -> None:
    for source in PARTITIONED_SOURCES:
        assert landed_partitions(source, messy_landing) == DAYS
    # Files being written (temporary names) and unrelated files are not partitions.
    (messy_landing / "erp/invoices/.invoices_2026-01-09.csv.tmp-1").write_text("x")
    (messy_landing / "erp/invoices/notes.txt").write_text("x")
    assert landed_partitions("invoices", messy_landing) == DAYS
    assert landed_partitions("invoices", messy_landing / "nowhere") == []
    with pytest.raises(ValueError, match="not a daily source"):
        landed_partitions("accounts", messy_landing)


def test_referential_consistency_of_valid_rows(loaded: tuple[Path, dict]) -> None:
    warehouse, _ = loaded
    con = connect(warehouse)
    for table in ("product_usage", "invoices", "subscriptions", "support_tickets"):
        orphans = con.execute(
            f"SELECT count(*) FROM {table} t ANTI JOIN accounts a USING (account_id)"
        ).fetchone()
        assert orphans == (0,), table
    assert con.execute(
        "SELECT count(*) FROM accounts a ANTI JOIN users u USING (account_id)"
    ).fetchone() == (0,)
