"""End-to-end fixtures: a generated sample warehouse and the sandbox as a real server."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spokesync.ingest.contract import MASTER_SOURCES, PARTITIONED_SOURCES
from spokesync.ingest.engine import ingest_master, ingest_partition, landed_partitions
from spokesync.sample_data.generator import GeneratorConfig, generate
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.warehouse import master_path
from tests.shared_sandbox import restored

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


# Product usage written by hand for the task tests: 2025-12-20 … 2026-01-03 (the fixture's
# last day), the other accounts silent. Threshold 3 users in 7 days; a crossing is real from
# Dec 27 on (its day and the 7 before it in the warehouse). By hand:
# - ACC-000006: USR-16, 17, 18 daily from Dec 20 (the first day): the window filling up;
# - ACC-000010: USR-32 daily, USR-33 and 34 from Jan 2: crosses on Jan 2 with 3;
# - ACC-000014: USR-43 … 46 daily to Dec 22, quiet Dec 23 … 30, back on Dec 31: the count is 4
#   to Dec 28, 0 on Dec 29 and 30, 4 on Dec 31 (and it started at 4 on Dec 20: warm-up);
# - ACC-000033: USR-103 daily, USR-104 and 105 on Jan 3 only: crosses on Jan 3 with 3;
# - ACC-000017: USR-53 daily, USR-54 and 55 on Dec 27 only: crosses on Dec 27 with 3, a real
#   crossing (its window Dec 20 … 27 is whole) but 7 days before Jan 3: history, no task.
USAGE_DAYS = [dt.date(2025, 12, 20) + dt.timedelta(days=i) for i in range(15)]


def hand_usage(day: dt.date) -> list[tuple[str, str]]:
    """(account, user) active on ``day`` in the hand-written usage."""
    rows = [("ACC-000006", f"USR-00000{u}") for u in (16, 17, 18)]
    rows.append(("ACC-000010", "USR-0000032"))
    if day >= dt.date(2026, 1, 2):
        rows += [("ACC-000010", "USR-0000033"), ("ACC-000010", "USR-0000034")]
    if not dt.date(2025, 12, 23) <= day <= dt.date(2025, 12, 30):
        rows += [("ACC-000014", f"USR-00000{u}") for u in (43, 44, 45, 46)]
    rows.append(("ACC-000033", "USR-0000103"))
    if day == dt.date(2026, 1, 3):
        rows += [("ACC-000033", "USR-0000104"), ("ACC-000033", "USR-0000105")]
    rows.append(("ACC-000017", "USR-0000053"))
    if day == dt.date(2025, 12, 27):
        rows += [("ACC-000017", "USR-0000054"), ("ACC-000017", "USR-0000055")]
    return rows


def write_hand_usage(home: Path) -> None:
    """Replace the warehouse's product usage with :func:`hand_usage` (one event per row)."""
    from spokesync.ingest.contract import SOURCES
    from spokesync.warehouse import partition_path

    shutil.rmtree(home / "warehouse" / "product_usage")
    schema = SOURCES["product_usage"].arrow_schema()
    for day in USAGE_DAYS:
        rows = hand_usage(day)
        at = dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)
        path = partition_path(home / "warehouse", "product_usage", day.isoformat())
        path.parent.mkdir(parents=True)
        table = pa.table(
            {
                "event_id": [f"EVT-{day:%Y%m%d}-{i:09d}" for i in range(len(rows))],
                "account_id": [a for a, _ in rows],
                "user_id": [u for _, u in rows],
                "event_type": ["feature_used"] * len(rows),
                "occurred_at": [at] * len(rows),
                "quantity": [1] * len(rows),
            },
            schema=schema,
        )
        pq.write_table(table, path)


def add_quiet_week(home: Path) -> None:
    """Seven product-usage partitions with no events before the warehouse's first day (the
    product launched on that day), so its usage-threshold crossings are real tasks."""
    from spokesync.ingest.contract import SOURCES
    from spokesync.warehouse import partition_days, partition_path

    first = partition_days(home / "warehouse", "product_usage")[0]
    empty = SOURCES["product_usage"].arrow_schema().empty_table()
    for back in range(1, 8):
        day = first - dt.timedelta(days=back)
        path = partition_path(home / "warehouse", "product_usage", day.isoformat())
        path.parent.mkdir(parents=True)
        pq.write_table(empty, path)


@pytest.fixture
def usage_settings(
    tmp_path: Path, fixed_warehouse_template: Path, sandbox: SandboxProcess
) -> Settings:
    """The fixed warehouse with :func:`hand_usage` as its product usage."""
    target = tmp_path / "usage-home"
    shutil.copytree(fixed_warehouse_template, target)
    write_hand_usage(target)
    return Settings.from_env(environ={}, home=target, env="test", hubspot_base_url=sandbox.base_url)


@pytest.fixture
def home(tmp_path: Path, warehouse_template: Path) -> Path:
    """A private copy of the sample warehouse (each test gets its own state DB too)."""
    target = tmp_path / "home"
    shutil.copytree(warehouse_template, target)
    return target


@pytest.fixture
def sandbox(sandbox_server: SandboxProcess) -> SandboxProcess:
    """The shared sandbox server (tests/conftest.py) as just started: an empty portal, no
    faults, 1000 requests / 10 s, fresh counters and request log."""
    return restored(sandbox_server)


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
