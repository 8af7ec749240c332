import json
from pathlib import Path

import pytest

from spokesync.sample_data.generator import GeneratorConfig, generate

DAYS = ["2026-01-01", "2026-01-02", "2026-01-03"]


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    """300 accounts, 3 days, 3% planted mess (day 2: extra usage column, truncated tickets
    line; day 3: invoices file without its optional paid_at column)."""
    out = tmp_path / "landing"
    generate(GeneratorConfig(seed=11, accounts=300, days=3, mess_rate=0.03, start=DAYS[0]), out)
    return out


def planted(landing: Path, source: str, partition: str, outcome: str = "quarantined") -> int:
    path = landing / "_planted" / source / f"{partition}.json"
    return sum(e["outcome"] == outcome for e in json.loads(path.read_text()))
