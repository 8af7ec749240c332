"""Change thresholds end to end: real syncs against the sandbox server on loopback.

A first sync writes every company; of two nightly syncs after it, the first moves counts only
within the tolerance (nothing is written), the second moves three past it (one call, those
three values) while the others drift on, still within the tolerance of what HubSpot holds.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from spokesync.explain import explain
from spokesync.mapping import load_mapping
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.sync.runner import ObjectSyncSummary, SyncOptions, run_sync
from spokesync.warehouse import master_path
from tests.e2e.conftest import FIXED_START, upsert_requests

pytestmark = pytest.mark.e2e

MAPPING = """
object_type: companies
id: {property: spokesync_account_id, column: account_id, label: Account ID (warehouse)}
source: {sql: SELECT * FROM accounts}
fields:
  - {property: name, type: string, column: name}
  - property: numberofemployees
    type: number
    column: employee_count
    tolerance: {relative: 0.1}
"""


def _set_counts(settings: Settings, counts: dict[str, int]) -> None:
    path = master_path(settings.warehouse_dir, "accounts")
    frame = pq.read_table(path).to_pandas()
    for account, n in counts.items():
        frame.loc[frame["account_id"] == account, "employee_count"] = n
    frame.to_parquet(path, index=False)


def _held(sandbox: SandboxProcess) -> dict[str, str]:
    return {
        r["properties"]["spokesync_account_id"]: r["properties"].get("numberofemployees")
        for r in sandbox.export("companies")
    }


def test_nightly_sends_only_values_past_the_tolerance_of_what_hubspot_holds(
    fixed_settings: Settings, sandbox: SandboxProcess, tmp_path: Path
) -> None:
    path = tmp_path / "companies.yaml"
    path.write_text(textwrap.dedent(MAPPING))
    mapping = load_mapping(path)

    def sync(day: int) -> ObjectSyncSummary:
        options = SyncOptions(
            mapping_paths=[path],
            as_of=FIXED_START + dt.timedelta(days=day),
            rate_limit_per_10s=1000,
        )
        summary = run_sync(fixed_settings, options)
        assert summary.ok, summary.to_text()
        (companies,) = summary.objects
        return companies

    first = sync(0)
    assert first.records_new == first.records_desired == 40
    start = _held(sandbox)
    chosen = sorted(a for a, n in start.items() if n is not None and int(n) >= 40)[:13]
    assert len(chosen) == 13, start
    base = {a: int(start[a]) for a in chosen}
    drifting, jumping = chosen[:10], chosen[10:]

    # night 1: ten counts move 5% — within 10% of what HubSpot holds: nothing is written
    _set_counts(fixed_settings, {a: base[a] + base[a] * 5 // 100 for a in drifting})
    sandbox.clear_requests()
    night1 = sync(1)
    assert upsert_requests(sandbox) == []
    assert night1.push is not None and night1.push.write_calls == 0
    assert (night1.fields_within_tolerance, night1.records_within_tolerance) == (10, 10)
    assert night1.write_calls_saved == 1  # ⌈10/100⌉ − ⌈0/100⌉
    assert "10 records not written, 1 write calls saved" in night1.line()
    assert _held(sandbox) == start  # HubSpot keeps its values, and so does the snapshot

    # night 2: the ten drift to 9% past the held value (still within); three double
    _set_counts(
        fixed_settings,
        {a: base[a] + base[a] * 9 // 100 for a in drifting} | {a: base[a] * 2 for a in jumping},
    )
    sandbox.clear_requests()
    night2 = sync(2)
    calls = upsert_requests(sandbox)
    assert len(calls) == 1 and night2.push is not None and night2.push.write_calls == 1
    sent = {i["id"]: i["properties"] for c in calls for i in c["body"]["inputs"]}
    assert sent == {a: {"numberofemployees": str(base[a] * 2)} for a in jumping}
    assert (night2.fields_within_tolerance, night2.records_within_tolerance) == (10, 10)
    assert night2.write_calls_saved == 0  # 3 + 10 records fit in the one call anyway
    assert _held(sandbox) == start | {a: str(base[a] * 2) for a in jumping}
    meta = night2.to_metadata()
    assert (meta["fields_within_tolerance"], meta["write_calls_saved"]) == (10, 0)

    why = explain(fixed_settings, mapping, drifting[0], FIXED_START + dt.timedelta(days=2))
    (prop,) = [p for p in why.properties if p.property == "numberofemployees"]
    assert prop.hubspot_value == str(base[drifting[0]])
    assert prop.desired_value == str(base[drifting[0]] + base[drifting[0]] * 9 // 100)
    assert (
        prop.decision == "within tolerance (tolerance ±10% of HubSpot's value: not worth a write)"
    )
    assert "tolerance ±10%" in prop.rule
