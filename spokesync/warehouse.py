"""The warehouse: validated rows as Parquet under ``$SPOKESYNC_HOME/warehouse``.

Layout (the contract between ingestion, desired state and the docs)::

    warehouse/<table>/date=YYYY-MM-DD/data.parquet   daily-partitioned tables
    warehouse/<table>/data.parquet                   master-data tables (no partitions)
    warehouse/quarantine/source=<table>/date=YYYY-MM-DD/<run_id>.parquet

Each partition file is written to a temporary name and renamed into place, so a reader never
sees half a partition and a re-run of a partition replaces it. Parquet files have no
single-writer lock, so runs for different partitions can write in parallel; only the DuckDB
state store (``state/<env>.duckdb``) needs the ``state_db`` pool.

:func:`connect` opens an in-memory DuckDB connection with one view per table, which is what
mapping SQL models query.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from spokesync import duckdb_memory

# Tables that are partitioned by day (the partition column ``date`` comes from the path).
PARTITIONED_TABLES: tuple[str, ...] = (
    "product_usage",
    "invoices",
    "subscriptions",
    "support_tickets",
)
# Master data, replaced whole on each load.
MASTER_TABLES: tuple[str, ...] = ("accounts", "firmographics", "users")
ALL_TABLES: tuple[str, ...] = MASTER_TABLES + PARTITIONED_TABLES
# Feeds a warehouse may not have yet: an empty table until they land.
OPTIONAL_TABLES: tuple[str, ...] = ("firmographics",)
QUARANTINE = "quarantine"
# HubSpot's own reference data (pipeline stages, owners), read from the portal by each sync
# (spokesync.hubspot.reference) so mapping SQL joins ids instead of typing them.
REFERENCE_DIR = "hubspot"
REFERENCE_TABLES: tuple[str, ...] = ("hubspot_pipeline_stages", "hubspot_owners")


class WarehouseEmpty(RuntimeError):
    """The warehouse has no partitions yet: nothing was ingested."""


def reference_path(warehouse_dir: Path, table: str) -> Path:
    return warehouse_dir / REFERENCE_DIR / table / "data.parquet"


def write_reference(warehouse_dir: Path, table: str, data: pa.Table) -> Path:
    """Replace one reference table (written to a temporary name, then renamed)."""
    if table not in REFERENCE_TABLES:
        raise ValueError(f"unknown reference table {table!r}")
    path = reference_path(Path(warehouse_dir), table)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(data, tmp)
    tmp.replace(path)
    return path


def partition_path(warehouse_dir: Path, table: str, day: str) -> Path:
    return warehouse_dir / table / f"date={day}" / "data.parquet"


def master_path(warehouse_dir: Path, table: str) -> Path:
    return warehouse_dir / table / "data.parquet"


def quarantine_path(warehouse_dir: Path, source: str, day: str | None, run_id: str) -> Path:
    part = day or "none"
    return warehouse_dir / QUARANTINE / f"source={source}" / f"date={part}" / f"{run_id}.parquet"


def partition_days(warehouse_dir: Path, table: str) -> list[dt.date]:
    """The days ``table`` has a partition for (ingested, whatever its row count), in order."""
    days = []
    for p in (Path(warehouse_dir) / table).glob("date=*"):
        if (p / "data.parquet").exists():
            try:
                days.append(dt.date.fromisoformat(p.name.removeprefix("date=")))
            except ValueError:
                continue
    return sorted(days)


def newest_partition(warehouse_dir: Path) -> dt.date | None:
    """The newest day any daily table has a partition for (None: nothing ingested yet)."""
    newest = [days[-1] for t in PARTITIONED_TABLES if (days := partition_days(warehouse_dir, t))]
    return max(newest) if newest else None


def _table_glob(warehouse_dir: Path, table: str) -> str | None:
    if table in MASTER_TABLES:
        path = master_path(warehouse_dir, table)
        return str(path) if path.exists() else None
    if table in REFERENCE_TABLES:
        path = reference_path(warehouse_dir, table)
        return str(path) if path.exists() else None
    if table == QUARANTINE:
        pattern = warehouse_dir / QUARANTINE / "*" / "*" / "*.parquet"
    else:
        pattern = warehouse_dir / table / "*" / "data.parquet"
    # Glob from the warehouse root: the pattern has wildcards in more than its last parts.
    return (
        str(pattern) if any(warehouse_dir.glob(str(pattern.relative_to(warehouse_dir)))) else None
    )


def _empty_view(con: duckdb.DuckDBPyConnection, table: str) -> None:
    from spokesync.ingest.contract import SOURCES  # the contract knows the columns

    con.register(f"__empty_{table}", SOURCES[table].arrow_schema().empty_table())
    con.execute(f'CREATE OR REPLACE VIEW "{table}" AS SELECT * FROM "__empty_{table}"')


def sql_literal(value: str) -> str:
    """Quote a string as a SQL literal, for the few statements (DDL) that take no parameters."""
    return "'" + value.replace("'", "''") + "'"


def connect(warehouse_dir: Path, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a view per warehouse table that has data.

    Views are named after the tables (``accounts``, ``users``, ``product_usage``, …). Tables
    with no data yet are simply absent, so a SQL model fails with DuckDB's own clear
    "Table … does not exist" message rather than silently returning nothing — except the
    optional enrichment feed (``firmographics``), which is an empty table until it first lands
    (nothing is enriched; gates report "the provider does not know the domain").
    """
    con = duckdb.connect(database)
    duckdb_memory.configure(con, "work")  # SPOKESYNC_MEMORY_LIMIT's share, a private spill dir
    create_views(con, warehouse_dir)
    return con


def create_views(con: duckdb.DuckDBPyConnection, warehouse_dir: Path) -> None:
    """:func:`connect`'s views, created in ``con``'s current database (e.g. a working database
    attached to the state store's DuckDB instance, see :func:`spokesync.diff.plan_changes`)."""
    for table in (*ALL_TABLES, QUARANTINE, *REFERENCE_TABLES):
        glob = _table_glob(Path(warehouse_dir), table)
        if glob is None:
            if table in OPTIONAL_TABLES:
                _empty_view(con, table)
            continue
        hive = "true" if table in PARTITIONED_TABLES or table == QUARANTINE else "false"
        # DDL cannot take prepared parameters; the path is ours, quoted as a SQL literal.
        con.execute(
            f'CREATE OR REPLACE VIEW "{table}" AS SELECT * FROM read_parquet('
            f"{sql_literal(glob)}, hive_partitioning={hive}, union_by_name=true)"
        )
