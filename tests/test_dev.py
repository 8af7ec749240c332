"""``make dev`` on a sample made on an earlier day: the missing days are appended first, so the
daily partitions (first landed day … yesterday) are exactly the days that have data; the links
it prints open the Materialize dialog with those days selected."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pipelines.dev import dialog_link, landed_range
from spokesync.sample_data.generator import GeneratorConfig, catch_up, generate


def test_a_stale_sample_is_caught_up_to_yesterday_once(tmp_path: Path) -> None:
    today = dt.date(2026, 12, 1)
    landing = tmp_path / "landing"
    # made four days ago: 2026-11-26 .. 2026-11-27, two days behind yesterday (11-30)
    generate(GeneratorConfig(accounts=5, days=2, seed=1, start=dt.date(2026, 11, 26)), landing)
    assert landed_range(landing) == ("2026-11-26", "2026-11-27")
    assert catch_up(landing, today) == ["2026-11-28", "2026-11-29", "2026-11-30"]
    assert landed_range(landing) == ("2026-11-26", "2026-11-30")
    assert catch_up(landing, today) == []  # already ends yesterday
    assert catch_up(tmp_path / "no-sample", today) == []  # not a generated sample: untouched


def test_the_printed_link_selects_the_landed_days() -> None:
    assert dialog_link("http://127.0.0.1:3000", "contacts_push", ("2026-11-01", "2026-11-30")) == (
        "http://127.0.0.1:3000/assets/contacts_push?default_range=%5B2026-11-01...2026-11-30%5D"
    )
