"""One definition per column: docs, pandera schema and Arrow schema agree with the contract,
and every column's nullability holds end to end through ingest."""

from pathlib import Path

import pandas as pd
import pytest
import yaml

from spokesync.ingest.contract import INDUSTRIES, PLANS, SOURCES
from spokesync.ingest.contract_docs import DOC_PATH, current, render
from spokesync.ingest.schemas import PANDERA_DTYPES, schema_for
from spokesync.sandbox.catalog import INDUSTRIES as SANDBOX_INDUSTRIES
from spokesync.warehouse import connect
from tests.ingest.landing import DAY, ingest, land, row

REPO = Path(__file__).resolve().parents[2]
ALL_COLUMNS = [(s, c.name) for s, spec in SOURCES.items() for c in spec.columns]


def test_docs_column_tables_are_the_contract() -> None:
    assert current(DOC_PATH.read_text()) == render(), (
        "docs/sources.md disagrees with spokesync/ingest/contract.py: "
        "run .venv/bin/python -m spokesync.ingest.contract_docs"
    )


def test_docs_state_the_contract_vocabulary_and_nullability() -> None:
    page = DOC_PATH.read_text()
    assert "| description | str, nullable |" in page
    assert "`CONSUMER_GOODS`" in page and "MANUFACTURING" not in page


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_pandera_and_arrow_schemas_follow_the_contract(source: str) -> None:
    spec = SOURCES[source]
    schema = schema_for(source, DAY if spec.partitioned else None)
    arrow = spec.arrow_schema()
    assert list(schema.columns) == arrow.names == spec.column_names
    for col in spec.columns:
        assert schema.columns[col.name].nullable is col.nullable, col.name
        expected = {"date": "datetime64", "str": "str"}.get(col.kind, str(PANDERA_DTYPES[col.kind]))
        assert str(schema.columns[col.name].dtype).startswith(expected), col.name
        assert arrow.field(col.name).nullable is col.nullable, col.name
        assert arrow.field(col.name).type == col.arrow_type, col.name


def test_every_industry_the_contract_allows_is_an_option_in_hubspot_and_the_mapping() -> None:
    mapping = yaml.safe_load((REPO / "mappings" / "companies.yaml").read_text())
    options = next(f["options"] for f in mapping["fields"] if f["property"] == "industry")
    assert set(INDUSTRIES) <= set(options)
    assert set(INDUSTRIES) <= {o.value for o in SANDBOX_INDUSTRIES}
    for name in ("companies", "deals"):
        m = yaml.safe_load((REPO / "mappings" / f"{name}.yaml").read_text())
        plan = next(f["options"] for f in m["fields"] if f["property"] == "spokesync_plan")
        assert set(PLANS) <= set(plan)


@pytest.mark.parametrize(("source", "column"), ALL_COLUMNS)
def test_a_null_loads_exactly_when_the_contract_says_nullable(
    tmp_path: Path, source: str, column: str
) -> None:
    """The audit of every column: a null value is loaded as null if the column is nullable,
    else that row (only) is quarantined as not_nullable; ingest never crashes."""
    spec = SOURCES[source]
    rows = [row(source, 1), row(source, 2, **{column: None})]
    land(tmp_path / "in", source, rows)
    report = ingest(tmp_path / "in", tmp_path / "wh", source)
    nullable = spec.column(column).nullable
    assert (report.rows_valid, report.rows_quarantined) == ((2, 0) if nullable else (1, 1))
    con = connect(tmp_path / "wh")
    values = con.sql(f'SELECT "{column}" FROM {source} ORDER BY "{spec.key}"').fetchall()
    if nullable:
        assert values[1] == (None,)
    else:
        ((checks,),) = con.execute("SELECT failed_checks FROM quarantine").fetchall()
        assert f'"column":"{column}","check":"not_nullable"' in checks


def test_a_ticket_without_description_key_or_with_empty_description_loads(tmp_path: Path) -> None:
    text = "\n".join(
        [
            '{"ticket_id":"T1","account_id":"ACC-1","requester_email":"a@b.io","subject":"s",'
            '"priority":"low","status":"new","channel":"web",'
            '"created_at":"2026-01-05T01:00:00Z","updated_at":"2026-01-05T01:00:00Z"}',
            '{"ticket_id":"T2","account_id":"ACC-1","requester_email":"a@b.io","subject":"s",'
            '"description":"","priority":"low","status":"new","channel":"web",'
            '"created_at":"2026-01-05T01:00:00Z","updated_at":"2026-01-05T01:00:00Z"}',
        ]
    )
    land(tmp_path / "in", "support_tickets", [], raw=text + "\n")
    report = ingest(tmp_path / "in", tmp_path / "wh", "support_tickets")
    assert (report.rows_valid, report.rows_quarantined) == (2, 0)
    got = pd.read_parquet(tmp_path / "wh" / "support_tickets" / f"date={DAY}" / "data.parquet")
    assert got["description"].isna().tolist() == [True, True]


def test_the_unicode_whitespace_constant_is_every_python_whitespace_plus_zero_width() -> None:
    from spokesync.ingest.validate import UNICODE_WHITESPACE

    expected = "".join(c for c in map(chr, range(0x110000)) if c.isspace()) + "\u200b\ufeff"
    assert expected == UNICODE_WHITESPACE
