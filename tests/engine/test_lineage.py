"""Lineage: the warehouse tables a mapping reads, from DuckDB's parser (no binding, no files)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from spokesync.mapping import MappingError, MappingSpec, load_mappings
from spokesync.mapping.lineage import tables_in_sql, tables_read

REPO_MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


def test_repo_mappings_read_exactly_their_tables() -> None:
    reads = {m.object_type: tables_read(m) for m in load_mappings(REPO_MAPPINGS)}
    assert reads == {
        # companies' CTEs named usage/tickets/billing are not tables.
        "companies": frozenset(
            {
                "accounts",
                "users",
                "subscriptions",
                "product_usage",
                "support_tickets",
                "invoices",
                "hubspot_owners",
                "firmographics",
            }
        ),
        "contacts": frozenset({"users", "product_usage", "firmographics"}),
        "deals": frozenset(
            {"subscriptions", "accounts", "invoices", "users", "hubspot_pipeline_stages"}
        ),
        "erp_subscription": frozenset({"subscriptions", "accounts"}),
        "tickets": frozenset({"support_tickets", "hubspot_pipeline_stages"}),
    }


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM accounts a JOIN users u USING (account_id)", {"accounts", "users"}),
        # A CTE that shadows the table it reads: the body reads the real table.
        (
            "WITH invoices AS (SELECT * FROM invoices WHERE date <= $as_of) SELECT * FROM invoices",
            {"invoices"},
        ),
        # Later CTEs see earlier ones; names are case-insensitive.
        (
            "WITH A AS (SELECT * FROM Accounts), b AS (SELECT * FROM a) SELECT * FROM B",
            {"accounts"},
        ),
        # A CTE defined inside a subquery does not hide the outer table of the same name.
        (
            "SELECT * FROM (WITH users AS (SELECT 1 AS x) SELECT * FROM users) t JOIN users USING (x)",
            {"users"},
        ),
        (
            "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) "
            "SELECT * FROM r, invoices",
            {"invoices"},
        ),
        (
            "SELECT account_id FROM accounts WHERE account_id IN (SELECT account_id FROM invoices) "
            "AND EXISTS (SELECT 1 FROM support_tickets s WHERE s.account_id = accounts.account_id)",
            {"accounts", "invoices", "support_tickets"},
        ),
        ('SELECT * FROM main."Accounts", raw.Events', {"accounts", "raw.events"}),
        ("SELECT unnest(tags) FROM product_usage", {"product_usage"}),
        # Table functions read files, not warehouse tables; nothing is globbed.
        ("SELECT * FROM read_parquet('nowhere/*.parquet')", set()),
        ("SELECT 1", set()),
    ],
)
def test_tables_in_sql(sql: str, expected: set[str]) -> None:
    assert tables_in_sql(sql) == frozenset(expected)


def test_bad_sql_names_the_parser_error() -> None:
    with pytest.raises(ValueError, match='parser: syntax error at or near "SELEC"'):
        tables_in_sql("SELEC * FROM accounts")


def test_field_expression_subquery_counts(
    write_mapping: Callable[[str, str], MappingSpec],
) -> None:
    m = write_mapping(
        "companies",
        """
object_type: companies
id: {property: spokesync_account_id, column: account_id}
source: {sql: "SELECT account_id, name FROM accounts"}
fields:
  - {property: name, type: string, column: name}
  - property: spokesync_open_tickets
    type: number
    expr: "(SELECT count(*) FROM support_tickets t WHERE t.account_id = src.account_id)"
""",
    )
    assert tables_read(m) == frozenset({"accounts", "support_tickets"})


def test_unparseable_mapping_names_the_file(
    write_mapping: Callable[[str, str], MappingSpec],
) -> None:
    m = write_mapping(
        "deals",
        """
object_type: deals
id: {property: spokesync_subscription_id, column: subscription_id}
source: {sql: "SELECT * FROM subscriptions WHERE (date <= $as_of"}
fields:
  - {property: dealname, type: string, column: plan}
""",
    )
    with pytest.raises(MappingError) as e:
        tables_read(m)
    assert str(e.value).startswith(f"{m.path}: source.sql: parser: syntax error")


def test_property_sources_follow_columns_by_name_into_the_tables_read() -> None:
    from spokesync.ingest.contract import SOURCES
    from spokesync.mapping.lineage import columns_in_expr, property_sources

    assert columns_in_expr("round(mrr, 2) + src.seats") == frozenset({"mrr", "seats"})
    companies = next(m for m in load_mappings(REPO_MAPPINGS) if m.object_type == "companies")
    sources = property_sources(companies, {t: s.column_names for t, s in SOURCES.items()})
    assert sources["name"] == [("accounts", "name")]
    assert sources["spokesync_mrr"] == [("subscriptions", "mrr")]  # expr: round(mrr, 2)
    assert sources["spokesync_active_users_30d"] == []  # computed by the query
    assert sources["spokesync_account_id"] == [
        ("accounts", "account_id"),
        ("invoices", "account_id"),
        ("product_usage", "account_id"),
        ("subscriptions", "account_id"),
        ("support_tickets", "account_id"),
        ("users", "account_id"),
    ]
