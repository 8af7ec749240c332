"""A backfill over many days ingests them on every core, with the same result as one by one."""

import datetime as dt
import os
from pathlib import Path

import pandas as pd
import pytest

from spokesync.ingest import landed_partitions
from spokesync.ingest.parallel import ingest_partitions
from spokesync.sample_data.generator import GeneratorConfig, generate


def test_parallel_backfill_equals_one_by_one(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    generate(GeneratorConfig(seed=5, accounts=60, days=4, start=dt.date(2026, 1, 1)), landing)
    days = landed_partitions("invoices", landing)
    assert len(days) == 4
    one = list(ingest_partitions("invoices", days, landing, tmp_path / "a", "r", workers=1))
    two = list(ingest_partitions("invoices", days, landing, tmp_path / "b", "r", workers=2))
    assert [r.partition for r in two] == days
    keep = ("rows_read", "rows_valid", "rows_quarantined", "failed_checks")
    assert [{k: getattr(r, k) for k in keep} for r in two] == [
        {k: getattr(r, k) for k in keep} for r in one
    ]
    for day in days:
        a = pd.read_parquet(tmp_path / "a" / "invoices" / f"date={day}" / "data.parquet")
        b = pd.read_parquet(tmp_path / "b" / "invoices" / f"date={day}" / "data.parquet")
        pd.testing.assert_frame_equal(a, b)


def test_workers_setting_is_checked(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from spokesync.ingest.parallel import default_workers

    monkeypatch.setenv("SPOKESYNC_INGEST_WORKERS", "3")
    assert default_workers() == 3
    monkeypatch.setenv("SPOKESYNC_INGEST_WORKERS", "zero")
    try:
        default_workers()
    except ValueError as e:
        assert "SPOKESYNC_INGEST_WORKERS must be a whole number" in str(e)
    else:
        raise AssertionError("no error")
    monkeypatch.delenv("SPOKESYNC_INGEST_WORKERS")
    assert default_workers() == (os.cpu_count() or 1)


_WORKER = """
import sys
from pathlib import Path
from spokesync.ingest.engine import ingest_partition
report = ingest_partition(sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), "r")
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("pandas", "pandera"))
print(report.rows_read, report.rows_valid, report.rows_quarantined, len(heavy), heavy[:3])
"""


def test_a_fast_path_worker_never_imports_pandas_or_pandera(tmp_path: Path) -> None:
    """What a backfill worker imports and runs for a clean day (the fast path): no pandas and
    no pandera (they cost ~1.5 s of CPU per spawned worker), yet bad rows are quarantined."""
    import subprocess
    import sys

    landing = tmp_path / "landing"
    generate(GeneratorConfig(seed=5, accounts=60, days=1, start=dt.date(2026, 1, 1)), landing)
    out = {}
    for source in ("subscriptions", "support_tickets", "product_usage"):
        (day,) = landed_partitions(source, landing)
        run = subprocess.run(
            [sys.executable, "-c", _WORKER, source, day, str(landing), str(tmp_path / "wh")],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        out[source] = run.stdout.split()
    for source, (read, valid, quarantined, heavy, *names) in out.items():
        assert int(read) == int(valid) + int(quarantined) > 0, source
        assert (heavy, names) == ("0", ["[]"]), (source, names)
    assert any(int(q) for _, _, q, *_ in out.values())  # the planted mess was quarantined


def test_the_cli_ingests_every_changed_partition_on_two_workers(
    tmp_path: Path,
    capsys,  # type: ignore[no-untyped-def]
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    """``spokesync ingest`` over three landed days hands the partitions to two worker
    processes: the same lines, in the same order, as one by one, and a day that cannot be read
    is one FAILED line while the days after it still load."""
    from spokesync.cli import main

    landing = tmp_path / "landing"
    generate(GeneratorConfig(seed=5, accounts=40, days=3, start=dt.date(2026, 1, 1)), landing)
    (landing / "erp/invoices/invoices_2026-01-02.csv").write_bytes(b"\xff\xfe\x00garbage")
    out = {}
    for workers in ("1", "2"):
        monkeypatch.setenv("SPOKESYNC_INGEST_WORKERS", workers)
        home = tmp_path / f"home{workers}"
        argv = ["ingest", "--landing", str(landing), "--home", str(home), "--run-id", "r"]
        assert main(argv) == 1
        out[workers] = capsys.readouterr().out.splitlines()
        written = (home / "warehouse" / "invoices").glob("date=*/data.parquet")
        days = sorted(p.parent.name for p in written)
        assert days == ["date=2026-01-01", "date=2026-01-03"], workers
    assert out["2"] == out["1"]
    lines = out["2"]
    assert len(lines) == 1 + 3 + 4 * 3 + 1  # header, 3 master tables, 4 sources x 3 days, total
    (failed,) = [line for line in lines if "FAILED" in line]
    assert failed.startswith("invoices         2026-01-02  FAILED: invoices 2026-01-02: ")
    assert lines[-1] == "1 partition(s) failed: invoices 2026-01-02"


def test_small_work_stays_in_process_unless_workers_are_set(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A few MB of landing files: spawning workers (~0.5 s of CPU each) would cost more than
    the ingest, so without $SPOKESYNC_INGEST_WORKERS the days run in this process."""
    from spokesync.ingest import parallel

    landing = tmp_path / "landing"
    generate(GeneratorConfig(seed=5, accounts=40, days=2, start=dt.date(2026, 1, 1)), landing)
    days = landed_partitions("invoices", landing)
    spawned: list[str] = []

    class Spawned(Exception):
        pass

    def get_context(method: str) -> None:
        spawned.append(method)
        raise Spawned

    monkeypatch.setattr(parallel.multiprocessing, "get_context", get_context)
    monkeypatch.delenv("SPOKESYNC_INGEST_WORKERS", raising=False)
    assert parallel._landed_bytes([("invoices", d) for d in days], landing) < (1 << 20)
    reports = list(ingest_partitions("invoices", days, landing, tmp_path / "wh", "r"))
    assert [r.partition for r in reports] == days and spawned == []
    monkeypatch.setenv("SPOKESYNC_INGEST_WORKERS", "2")
    with pytest.raises(Spawned):  # set explicitly: the pool is used whatever the size
        list(ingest_partitions("invoices", days, landing, tmp_path / "wh2", "r"))
    assert spawned == ["spawn"]
