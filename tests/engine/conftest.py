"""Small warehouse fixtures with exactly the contract columns (spokesync.warehouse layout)."""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spokesync import warehouse
from spokesync.ingest.contract import SOURCES
from spokesync.mapping import MappingSpec, load_mapping

AS_OF = dt.date(2026, 1, 15)
TS = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)

# The warehouse's own schemas, from the one contract (nullable everywhere: fixtures may plant
# nulls that ingest would have quarantined, to test what the engine does with them).
SCHEMAS = {
    name: pa.schema([f.with_nullable(True) for f in spec.arrow_schema()])
    for name, spec in SOURCES.items()
}


class Warehouse:
    """Writes fixture rows as Parquet at the paths spokesync.warehouse reads."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, table: str, rows: list[dict[str, Any]], day: str | None = None) -> None:
        schema = SCHEMAS[table]
        data = {name: [r.get(name) for r in rows] for name in schema.names}
        if table in warehouse.MASTER_TABLES:
            path = warehouse.master_path(self.root, table)
        else:
            assert day is not None, f"{table} is partitioned: give day"
            path = warehouse.partition_path(self.root, table, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(data, schema=schema), path)


def account(i: int, **over: Any) -> dict[str, Any]:
    row = {
        "account_id": f"A{i:04d}",
        "name": f"Account {i}",
        "domain": f"acct{i}.example.com",
        "industry": "COMPUTER_SOFTWARE",
        "country": "DE",
        "employee_count": 10 * i,
        "owner_email": "owner@example.com",
        "created_at": TS,
        "updated_at": TS,
    }
    row.update(over)
    return row


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "warehouse")


@pytest.fixture
def state_db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "test.duckdb"


@pytest.fixture
def write_mapping(tmp_path: Path) -> Callable[[str, str], MappingSpec]:
    """Write YAML text to ``<tmp>/mappings/<name>.yaml`` and load it."""

    def _write(name: str, text: str) -> MappingSpec:
        path = tmp_path / "mappings" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return load_mapping(path)

    return _write


ACCOUNTS_MAPPING = """
object_type: companies
id: {property: spokesync_account_id, column: account_id}
source:
  sql: SELECT * FROM accounts WHERE CAST(created_at AS DATE) <= $as_of
as_of_column: updated_at
fields:
  - {property: name, type: string, column: name}
  - {property: domain, type: string, format: domain, column: domain}
  - {property: numberofemployees, type: number, column: employee_count}
  - {property: country, type: string, column: country, null_policy: clear}
  - {property: industry, type: enumeration, column: industry, options: [COMPUTER_SOFTWARE, RETAIL]}
  - {property: lifecyclestage, type: enumeration, expr: "'customer'", owner: hubspot,
     options: [lead, customer]}
"""


@pytest.fixture
def accounts_mapping(write_mapping: Callable[[str, str], MappingSpec]) -> MappingSpec:
    return write_mapping("companies", ACCOUNTS_MAPPING)
