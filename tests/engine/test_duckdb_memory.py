"""DuckDB's memory limit and spill folder (SPOKESYNC_MEMORY_LIMIT, SPOKESYNC_TEMP_DIR): parsed
exactly, split between the working databases and the state store, applied to every connection
the plan and the store open, and a bad value is a usage error naming the variable."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import pytest

from spokesync import duckdb_memory, warehouse
from spokesync.cli import main
from spokesync.exit_codes import ExitCode
from spokesync.settings import SettingsError
from spokesync.state import StateStore


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1.5GB", 1_500_000_000),
        ("800MB", 800_000_000),
        ("2GiB", 2 * 1024**3),
        (" 1 gb ", 1_000_000_000),
        ("512MiB", 512 * 1024**2),
        ("100000000", 100_000_000),
    ],
)
def test_sizes_are_read_as_duckdb_reads_them(text: str, size: int) -> None:
    assert duckdb_memory.parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("lots", "is not a size: write a number and a unit, e.g. 1.5GB, 800MB, 2GiB"),
        ("1.5 parsecs", "is not a size: write a number and a unit, e.g. 1.5GB, 800MB, 2GiB"),
        ("-1GB", "is not a size: write a number and a unit, e.g. 1.5GB, 800MB, 2GiB"),
        ("10MB", "is too small: spokesync needs at least 64MB for DuckDB"),
    ],
)
def test_a_bad_size_names_the_variable(text: str, why: str) -> None:
    with pytest.raises(SettingsError) as caught:
        duckdb_memory.parse_size(text)
    assert str(caught.value) == f"SPOKESYNC_MEMORY_LIMIT={text!r} {why}"


def test_the_budget_is_split_two_thirds_work_one_third_state() -> None:
    assert duckdb_memory.limit_bytes("work", {}) == 1_000_000_000  # default 1.5GB
    assert duckdb_memory.limit_bytes("state", {}) == 500_000_000
    env = {"SPOKESYNC_MEMORY_LIMIT": "3GB"}
    assert duckdb_memory.limit_bytes("work", env) == 2_000_000_000
    assert duckdb_memory.limit_bytes("state", env) == 1_000_000_000


def _shown(limit_bytes: int) -> str:
    """How DuckDB shows a limit set the way ``configure`` sets it."""
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{limit_bytes // 1024}KiB'")
    (shown,) = con.execute("SELECT current_setting('memory_limit')").fetchone() or ("",)
    con.close()
    return str(shown)


def _settings(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    row = con.execute(
        "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
    ).fetchone()
    assert row is not None
    return str(row[0]), str(row[1])


def test_warehouse_connections_get_the_work_share_and_a_private_spill_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPOKESYNC_MEMORY_LIMIT", "600MB")
    monkeypatch.delenv("SPOKESYNC_TEMP_DIR", raising=False)
    con = warehouse.connect(tmp_path / "wh")
    limit, temp = _settings(con)
    con.close()
    assert limit == _shown(400_000_000) != _shown(200_000_000)
    # never DuckDB's default for an in-memory database ('.tmp' in the current directory)
    assert Path(temp).parent == Path(tempfile.gettempdir())
    assert Path(temp).name.startswith("spokesync-duckdb-")

    monkeypatch.setenv("SPOKESYNC_TEMP_DIR", str(tmp_path / "spill"))
    first, second = warehouse.connect(tmp_path / "wh"), warehouse.connect(tmp_path / "wh")
    (_, t1), (_, t2) = _settings(first), _settings(second)
    first.close(), second.close()
    assert Path(t1).parent == Path(t2).parent == tmp_path / "spill" and t1 != t2


def test_the_state_store_gets_the_state_share_and_spills_next_to_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPOKESYNC_MEMORY_LIMIT", "600MB")
    monkeypatch.delenv("SPOKESYNC_TEMP_DIR", raising=False)
    db = tmp_path / "state" / "test.duckdb"
    with StateStore(db) as store, store.connection.connection() as con:
        limit, temp = _settings(con)
    assert (limit, temp) == (_shown(200_000_000), f"{db}.tmp")
    monkeypatch.setenv("SPOKESYNC_TEMP_DIR", str(tmp_path / "spill"))
    with StateStore(db) as store, store.connection.connection() as con:
        _, temp = _settings(con)
    assert Path(temp).parent == tmp_path / "spill"


def test_a_plan_spills_under_a_small_limit_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What does not fit is written to the spill folder, which goes when the connection does."""
    monkeypatch.setenv("SPOKESYNC_MEMORY_LIMIT", "96MB")  # 64MB for the working database
    monkeypatch.setenv("SPOKESYNC_TEMP_DIR", str(tmp_path / "spill"))
    con = warehouse.connect(tmp_path / "wh")
    _, temp = _settings(con)
    con.execute(
        "CREATE TABLE t AS SELECT i, md5(i::VARCHAR) AS s FROM range(3000000) r(i)"
    )  # ~200 MB of strings: more than the limit
    (spilled,) = con.execute("SELECT count(*) FROM duckdb_temporary_files()").fetchone() or (0,)
    assert spilled > 0 and Path(temp).is_dir()
    assert con.execute("SELECT count(DISTINCT s) FROM t").fetchone() == (3_000_000,)
    con.close()
    assert not Path(temp).exists()


def test_a_bad_memory_limit_is_a_usage_error_through_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SPOKESYNC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SPOKESYNC_ENV", "test")
    monkeypatch.setenv("SPOKESYNC_MEMORY_LIMIT", "two gigs")
    code = main(["sync", "--no-ingest", "--shadow"])
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE
    assert err.strip() == (
        "spokesync: error: SPOKESYNC_MEMORY_LIMIT='two gigs' is not a size: write a number and "
        "a unit, e.g. 1.5GB, 800MB, 2GiB"
    )
