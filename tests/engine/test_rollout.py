"""Rollout buckets: Python and DuckDB agree; validation."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spokesync.rollout import Rollout, rollout_bucket


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(max_size=20), min_size=1, max_size=30))
def test_python_bucket_equals_duckdb(ids: list[str]) -> None:
    con = duckdb.connect()
    got = con.execute(
        "SELECT list_transform($1, lambda x: md5_number_lower(x) % 10000)", [ids]
    ).fetchone()
    assert got is not None and got[0] == [rollout_bucket(i) for i in ids]


def test_threshold_and_validation() -> None:
    assert Rollout(percent=12.5).threshold == 1250
    assert Rollout().sql_percent_filter("x") is None
    assert Rollout(percent=100).sql_percent_filter("x") is None
    assert Rollout(percent=5).sql_percent_filter("x") == "(md5_number_lower(x) % 10000) < 500"
    with pytest.raises(ValueError, match="between 0 and 100"):
        Rollout(percent=101)
    with pytest.raises(ValueError, match="one SQL expression"):
        Rollout(predicate="1=1; DROP TABLE x")
