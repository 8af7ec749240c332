"""End-to-end fixtures: a generated sample warehouse and the sandbox as a real server."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from spokesync.ingest.contract import MASTER_SOURCES, PARTITIONED_SOURCES
from spokesync.ingest.engine import ingest_master, ingest_partition, landed_partitions
from spokesync.sample_data.generator import GeneratorConfig, generate
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.warehouse import master_path

ACCOUNTS = 40
DAYS = 3


# The workflow tests write expected values by hand, so their data must not move with the
# calendar (invoices fall on each account's billing day of the month).
FIXED_START = dt.date(2026, 1, 1)


def build_warehouse(home: Path, start: dt.date | None = None) -> None:
    """Generate and ingest a small, deterministic sample warehouse under ``home``."""
    landing = home / "landing"
    extra = {"start": start} if start is not None else {}
    generate(GeneratorConfig(accounts=ACCOUNTS, days=DAYS, seed=11, **extra), landing)
    wh = home / "warehouse"
    for source in MASTER_SOURCES:
        ingest_master(source, landing, wh, "fixture")
    for source in PARTITIONED_SOURCES:
        for day in landed_partitions(source, landing):
            ingest_partition(source, day, landing, wh, "fixture")


@pytest.fixture(scope="session")
def warehouse_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("warehouse-template")
    build_warehouse(home)
    return home


@pytest.fixture(scope="session")
def fixed_warehouse_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample warehouse for 2026-01-01..03, whatever the date today."""
    home = tmp_path_factory.mktemp("fixed-warehouse-template")
    build_warehouse(home, FIXED_START)
    return home


@pytest.fixture
def fixed_settings(
    tmp_path: Path, fixed_warehouse_template: Path, sandbox: SandboxProcess
) -> Settings:
    target = tmp_path / "fixed-home"
    shutil.copytree(fixed_warehouse_template, target)
    return Settings.from_env(environ={}, home=target, env="test", hubspot_base_url=sandbox.base_url)


@pytest.fixture
def home(tmp_path: Path, warehouse_template: Path) -> Path:
    """A private copy of the sample warehouse (each test gets its own state DB too)."""
    target = tmp_path / "home"
    shutil.copytree(warehouse_template, target)
    return target


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxProcess]:
    with SandboxProcess(tmp_path / "sandbox.sqlite", rate_limit=1000) as sb:
        yield sb


@pytest.fixture
def settings(home: Path, sandbox: SandboxProcess) -> Settings:
    return Settings.from_env(environ={}, home=home, env="test", hubspot_base_url=sandbox.base_url)


def rewrite_master(home: Path, table: str, key: str, key_value: str, **values: object) -> None:
    """Change columns of one master-data row in the warehouse, as a new load would."""
    path = master_path(home / "warehouse", table)
    frame = pq.read_table(path).to_pandas()
    mask = frame[key] == key_value
    assert mask.sum() == 1, f"{table}.{key}={key_value} matches {mask.sum()} rows"
    for column, value in values.items():
        frame.loc[mask, column] = value
    frame.to_parquet(path, index=False)


def upsert_requests(sandbox: SandboxProcess) -> list[dict]:
    return [r for r in sandbox.requests(method="POST") if r["path"].endswith("/batch/upsert")]


def read_reference(settings: Settings) -> None:
    """Read HubSpot's pipelines and owners from the sandbox into the warehouse, as a sync does
    before planning (for tests that compute desired state before any sync ran)."""
    import asyncio

    from spokesync.hubspot.reference import refresh_reference
    from spokesync.sync.runner import SyncOptions, make_client

    async def run() -> None:
        client = make_client(settings, SyncOptions())
        try:
            await refresh_reference(client, settings.warehouse_dir, "test-reference")
        finally:
            await client.aclose()

    asyncio.run(run())
