import datetime as dt
from pathlib import Path

import pytest

from spokesync.sample_data.generator import GeneratorConfig, generate


@pytest.fixture(scope="module")
def messy_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small but very messy sample (20% planted, 6 days) so every kind of bad row appears."""
    out = tmp_path_factory.mktemp("messy") / "landing"
    generate(
        GeneratorConfig(seed=3, accounts=400, days=6, mess_rate=0.2, start=dt.date(2026, 1, 1)), out
    )
    return out
