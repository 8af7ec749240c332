"""Property-based, against the real sandbox on loopback: messy account rows (random Unicode,
control characters, null tokens, SQL-looking text, numbers at the edges, typed text that is no
value of its type) go through ingest (CSV) and ``spokesync sync`` into a portal that already
holds spokesync's earlier values of the same accounts and a company spokesync does not manage.

Every row ends exactly one way: quarantined by ingest with a reason, rejected by the plan with
a reason naming the field and HubSpot keeps every value it had, or in HubSpot with exactly its
value (computed here by hand from the landed text, not by the engine). The unmanaged company
is never touched. Few examples, small data: a few seconds a run.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import tempfile
import textwrap
import unicodedata
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from spokesync.mapping import MappingSpec, load_mapping
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.state.store import StateStore
from spokesync.sync.runner import SyncOptions, run_sync
from tests.ingest.landing import ingest, land, row

pytestmark = pytest.mark.e2e

MAPPING = """
object_type: companies
id: {property: spokesync_account_id, column: account_id}
source:
  sql: SELECT * FROM accounts
as_of_column: updated_at
fields:
  - {property: name, type: string, column: name}
  - {property: numberofemployees, type: number, column: employee_count}
  - {property: spokesync_vs_number, type: number, label: VS number, group: spokesync,
     expr: "CASE WHEN starts_with(name, 'n:') THEN substr(name, 3) END"}
  - {property: spokesync_vs_flag, type: bool, label: VS flag, group: spokesync,
     expr: "CASE WHEN starts_with(name, 'b:') THEN substr(name, 3) END"}
  - {property: spokesync_vs_day, type: date, label: VS day, group: spokesync,
     expr: "CASE WHEN starts_with(name, 'd:') THEN substr(name, 3) END"}
  - {property: spokesync_vs_tier, type: enumeration, options: [GOLD, SILVER], label: VS tier,
     group: spokesync, expr: "CASE WHEN starts_with(name, 'e:') THEN substr(name, 3) END"}
"""
TYPED = {"n": "spokesync_vs_number", "b": "spokesync_vs_flag", "d": "spokesync_vs_day",
         "e": "spokesync_vs_tier"}  # fmt: skip
MANAGED = ("name", "numberofemployees", *TYPED.values())
ASCII_WS = " \t\n\x0b\x0c\r"
AS_OF = dt.date(2026, 1, 15)

NULL_TOKENS = ["NA", "N/A", "NULL", "null", "nan", "NaN", "#N/A", "None", "-"]
SQL_LIKE = ["'; DROP TABLE accounts; --", '" OR 1=1 --', "$as_of", "' || '", "%s", "?", "\\"]
NUMBERS = ["12", " 12 ", "12abc", "1,200", "1e3", "-0", "00012.50", "inf", "NaN", "١٢",
           "9" * 30 + ".000000001", str(2**53 + 1), "0.1", ""]  # fmt: skip
BOOLS = ["yes", " No ", "TRUE", "off", "1", "0", "maybe", "2", ""]
DATES = ["2026-01-15", " 2026-03-01 ", "2026-02-30", "31/12/2026", "tomorrow", ""]
TIERS = ["GOLD", " SILVER ", "gold", "PLATINUM", "GOLD;SILVER", ""]
messy = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20),
    st.sampled_from(NULL_TOKENS + SQL_LIKE),
    st.builds(lambda a, b: a + b, st.sampled_from(["\u00a0", "\t", " ", "\u3000"]), st.text()),
)
typed = st.one_of(
    st.builds(lambda v: "n:" + v, st.sampled_from(NUMBERS)),
    st.builds(lambda v: "b:" + v, st.sampled_from(BOOLS)),
    st.builds(lambda v: "d:" + v, st.sampled_from(DATES)),
    st.builds(lambda v: "e:" + v, st.sampled_from(TIERS)),
)
# Head counts as landed text: valid ones, and ones ingest quarantines (negative, no integer).
employees = st.sampled_from(
    ["-5", "0", "7", str(2**53 + 1), str(2**63 - 1), "1e3", "12abc", "NA", "", "3.5"]
)


def _n(text: str) -> str | None:
    """The number HubSpot stores for numeric text, or '!' when it is no number (by hand)."""
    t = text.strip(ASCII_WS)
    if not t:
        return None
    if not re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", t):
        return "!"
    out = format(Decimal(t).normalize(), "f")
    return "0" if out in ("-0", "0") else out


def _b(text: str) -> str | None:
    t = text.strip(ASCII_WS).lower()
    if not t:
        return None
    return {"true": "true", "t": "true", "1": "true", "yes": "true", "y": "true", "on": "true",
            "false": "false", "f": "false", "0": "false", "no": "false", "n": "false",
            "off": "false"}.get(t, "!")  # fmt: skip


def _d(text: str) -> str | None:
    t = text.strip(ASCII_WS)
    if not t:
        return None
    return t if t in ("2026-01-15", "2026-03-01") else "!"  # the valid dates of DATES


def _e(text: str) -> str | None:
    t = text.strip(ASCII_WS)
    if not t:
        return None
    return t if t in ("GOLD", "SILVER") else "!"


def expected(name: str, employee_count: str) -> dict[str, str | None] | None:
    """What HubSpot must hold after the row is synced; None: the plan must reject it."""
    values: dict[str, str | None] = {
        "name": unicodedata.normalize("NFC", name).strip(ASCII_WS) or None,
        "numberofemployees": str(int(employee_count)),
    }
    kind = name[:2]
    for prefix, prop in TYPED.items():
        values[prop] = None
        if kind == prefix + ":":
            values[prop] = {"n": _n, "b": _b, "d": _d, "e": _e}[prefix](name[2:])
    if "!" in values.values():
        return None
    return values


def _sync(home: Path, sandbox: SandboxProcess, mapping: MappingSpec) -> Any:
    settings = Settings.from_env(
        environ={}, home=home, env="test", hubspot_base_url=sandbox.base_url
    )
    return run_sync(
        settings, SyncOptions(mapping_paths=[mapping.path], quarantine_error_rate=1.0, as_of=AS_OF)
    )


def _held(sandbox: SandboxProcess) -> dict[str, dict[str, Any]]:
    return {
        r["properties"].get("spokesync_account_id") or f"unmanaged-{r['id']}": r["properties"]
        for r in sandbox.export("companies")
    }


def _quarantined(report: Any) -> dict[str, str]:
    """account id (as landed) → the quarantine's reason."""
    if report.quarantine_path is None:
        return {}
    table = pq.read_table(report.quarantine_path).to_pylist()
    return {json.loads(r["raw_row"])["account_id"]: r["error"] for r in table}


@settings(
    max_examples=5,
    deadline=None,
    derandomize=True,  # the same examples on every CI run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    # typed text with a valid head count (these reach the plan), then messy rows of any kind
    typed_rows=st.lists(st.tuples(typed, st.integers(0, 2**62).map(str)), min_size=2, max_size=3),
    messy_rows=st.lists(st.tuples(st.one_of(messy, typed), employees), min_size=1, max_size=2),
)
def test_every_row_is_in_hubspot_exactly_or_held_back_with_a_reason(
    sandbox: SandboxProcess,
    typed_rows: list[tuple[str, str]],
    messy_rows: list[tuple[str, str]],
) -> None:
    rows = typed_rows + messy_rows
    sandbox.restore()  # the fixture restores it once per test, this once per example
    home = Path(tempfile.mkdtemp(prefix="values-vs-"))
    try:
        (home / "mappings").mkdir()
        path = home / "mappings" / "companies.yaml"
        path.write_text(textwrap.dedent(MAPPING), encoding="utf-8")
        mapping = load_mapping(path)
        keys = [f"ACC-{i:05d}" for i in range(1, len(rows) + 1)]
        stamp = {"created_at": "2025-01-01T00:00:00Z"}
        unmanaged = sandbox.edit_as_person(
            "companies", None, {"name": "Not Ours GmbH", "numberofemployees": "77"}
        )

        # 1. Earlier values: each account synced once with plain, valid values.
        start = [
            row("accounts", name=f"n:{i}", employee_count=str(i), account_id=k, domain=f"a{i}.io",
                updated_at="2025-02-01T00:00:00Z", **stamp)
            for i, k in enumerate(keys, start=1)
        ]  # fmt: skip
        land(home / "landing", "accounts", start)
        assert ingest(home / "landing", home / "warehouse", "accounts").rows_quarantined == 0
        _sync(home, sandbox, mapping)
        before = _held(sandbox)
        assert {k: before[k]["spokesync_vs_number"] for k in keys} == {
            k: str(i) for i, k in enumerate(keys, start=1)
        }

        # 2. The messy load of the same accounts.
        landed = [
            row("accounts", name=name, employee_count=count, account_id=k, domain=f"a{i}.io",
                updated_at="2025-03-01T00:00:00Z", **stamp)
            for i, (k, (name, count)) in enumerate(zip(keys, rows, strict=True), start=1)
        ]  # fmt: skip
        land(home / "landing", "accounts", landed)
        report = ingest(home / "landing", home / "warehouse", "accounts", run_id="r2")
        quarantined = _quarantined(report)
        summary = _sync(home, sandbox, mapping)
        (obj,) = summary.objects
        assert obj.error is None, obj.line()
        state_db = Settings.from_env(environ={}, home=home, env="test").state_db
        with StateStore(state_db) as store:
            found = store.rejected.latest("companies", summary.run_id, 100)
        rejected = {r.external_id: r.reason for r in found}
        after = _held(sandbox)

        assert after[f"unmanaged-{unmanaged['id']}"] == before[f"unmanaged-{unmanaged['id']}"]
        for k, (name, count) in zip(keys, rows, strict=True):
            held = {p: after[k].get(p) or None for p in MANAGED}
            was = {p: before[k].get(p) or None for p in MANAGED}
            if k in quarantined:
                event("quarantined")
                assert quarantined[k].strip(), k  # a reason naming what is wrong
                assert held == was, (k, name)  # HubSpot keeps what it had
                continue
            want = expected(name, count)
            if want is None:
                event("rejected")
                assert rejected.get(k, "").startswith("field "), (k, name, rejected)
                assert held == was, (k, name)  # never a changed value
                continue
            assert k not in rejected, (k, name, rejected[k])
            event("in HubSpot exactly")
            # A value the row has no longer (blank typed part): null_policy skip keeps it.
            keep = {p: was[p] for p, v in want.items() if v is None}
            assert held == {**want, **keep}, (k, name)
    finally:
        shutil.rmtree(home, ignore_errors=True)
