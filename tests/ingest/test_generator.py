"""The sample generator: deterministic, append-day consistent, chunked parts at scale."""

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from spokesync.cli import main
from spokesync.sample_data.generator import (
    GeneratorConfig,
    append_day,
    default_start,
    generate,
)
from spokesync.sample_data.model import Company, iso_date, iso_ts

START = dt.date(2026, 1, 1)  # the tests below write dates by hand


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    cfg = GeneratorConfig(seed=5, accounts=80, days=2, start=START)
    generate(cfg, tmp_path / "a")
    generate(cfg, tmp_path / "b")
    generate(cfg.model_copy(update={"seed": 6}), tmp_path / "c")
    a, b, c = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert len(a) == 3 + 2 * 4 + 2 * 4 + 3 + 1  # masters, daily files, manifests, params
    assert a == b
    assert a.keys() == c.keys()
    assert a["master/accounts.csv"] != c["master/accounts.csv"]


def test_append_day_lands_exactly_what_a_longer_generation_would(tmp_path: Path) -> None:
    generate(GeneratorConfig(seed=5, accounts=80, days=2, start=START), tmp_path / "short")
    day, counts = append_day(tmp_path / "short")
    generate(GeneratorConfig(seed=5, accounts=80, days=3, start=START), tmp_path / "long")
    assert day == "2026-01-03" and set(counts) == {
        "product_usage",
        "invoices",
        "subscriptions",
        "support_tickets",
    }
    assert _files(tmp_path / "short") == _files(tmp_path / "long")


def test_big_days_are_written_in_bounded_parts(tmp_path: Path) -> None:
    cfg = GeneratorConfig(
        seed=1, accounts=50, days=1, events_per_day=2500, part_rows=1000, start=START
    )
    generate(cfg, tmp_path)
    parts = sorted((tmp_path / "product_usage" / "date=2026-01-01").glob("*.parquet"))
    assert [p.name for p in parts] == [
        "part-0000.parquet",
        "part-0001.parquet",
        "part-0002.parquet",
    ]
    planted = json.loads((tmp_path / "_planted/product_usage/2026-01-01.json").read_text())
    per_part = {p.name: 0 for p in parts}
    for e in planted:
        per_part[Path(e["file"]).name] += 1
    rows = {p.name: pq.read_metadata(p).num_rows for p in parts}
    assert rows == {
        name: base + per_part[name] for name, base in zip(rows, (1000, 1000, 500), strict=True)
    }


def test_cli_generates_ingests_and_skips_unchanged(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("SPOKESYNC_HOME", str(tmp_path / "home"))
    landing = tmp_path / "home" / "landing"
    args = [
        "--out",
        str(landing),
        "--start",
        "2026-01-01",
        "--days",
        "2",
        "--accounts",
        "40",
        "--seed",
        "2",
    ]
    assert main(["sample-data", *args]) == 0
    capsys.readouterr()
    assert main(["ingest"]) == 0
    first = capsys.readouterr().out.splitlines()
    assert len(first) == 1 + 3 + 4 * 2  # header, 3 master tables, 4 sources x 2 days
    assert main(["ingest"]) == 0
    assert capsys.readouterr().out.splitlines() == first[:1]  # nothing changed: nothing to do
    assert main(["sample-data", "--out", str(landing), "--append-day"]) == 0
    capsys.readouterr()
    assert main(["ingest", "--source", "invoices"]) == 0
    (line,) = capsys.readouterr().out.splitlines()[1:]
    assert line.startswith("invoices         2026-01-03")
    (landing / "erp/invoices/invoices_2026-01-03.csv").write_bytes(b"\xff\xfe\x00garbage")
    assert main(["ingest", "--source", "invoices", "--date", "2026-01-03"]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_by_default_the_sample_ends_yesterday() -> None:
    today = dt.datetime.now(dt.UTC).date()
    cfg = GeneratorConfig(days=30)
    assert cfg.start == today - dt.timedelta(days=30)
    assert cfg.start + dt.timedelta(days=cfg.days - 1) == today - dt.timedelta(days=1)
    assert default_start(3, today=dt.date(2026, 3, 1)) == dt.date(2026, 2, 26)
    assert GeneratorConfig(days=3, start="2026-01-01").start == START


def test_cli_sample_without_start_ends_yesterday(tmp_path: Path, capsys) -> None:
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    landing = tmp_path / "landing"
    assert main(["sample-data", "--out", str(landing), "--days", "2", "--accounts", "10"]) == 0
    assert f"… {yesterday})" in capsys.readouterr().out
    days = sorted(p.name for p in (landing / "product_usage").iterdir())
    assert days == [f"date={yesterday - dt.timedelta(days=1)}", f"date={yesterday}"]


def test_users_per_account_sets_the_mean_and_the_range() -> None:
    start = dt.date(2026, 1, 1)
    five = Company.build(5, 2000, start, users_per_account=5)
    per_account = np.diff(five.user_offset)
    assert per_account.min() == 1 and per_account.max() == 9
    assert 4.8 < per_account.mean() < 5.2
    assert five.n_users == int(per_account.sum()) == len(five.user_account)
    # the default is what it always was: 1–5 users, the very draw of the code before the option
    default = Company.build(5, 2000, start)
    assert np.diff(default.user_offset)[:12].tolist() == [2, 1, 5, 2, 5, 1, 5, 2, 1, 2, 1, 3]
    assert default.n_users == 5971
    one = Company.build(5, 50, start, users_per_account=1)
    assert one.n_users == 50


def test_timestamps_and_dates_as_the_files_have_always_written_them() -> None:
    us = np.array([0, 1_600_000_000_000_001, -86_400_000_000 - 1, 1_767_225_599_999_999])
    assert iso_ts(us).to_pylist() == [
        "1970-01-01T00:00:00.000000Z",
        "2020-09-13T12:26:40.000001Z",
        "1969-12-30T23:59:59.999999Z",
        "2025-12-31T23:59:59.999999Z",
    ]
    assert iso_date(us).to_pylist() == ["1970-01-01", "2020-09-13", "1969-12-30", "2025-12-31"]
