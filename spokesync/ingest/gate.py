"""The quarantine gate: may a mapping push, given the ingest reports of the tables it reads?

The same rule as the Dagster ``quarantine_rate`` (blocking) and ``schema_drift`` checks, for the
CLI: a source partition the mapping reads blocks the mapping when more than ``error_rate`` of
its rows were quarantined, or when a required column was missing from its file. Only the
mappings that read a failing source are blocked (lineage from
:func:`spokesync.mapping.lineage.tables_read`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from spokesync.ingest.contract import SOURCES
from spokesync.ingest.report import load_report

DEFAULT_ERROR_RATE = 0.05
ERROR_RATE_ENV = "SPOKESYNC_QUARANTINE_ERROR_RATE"


def error_rate_from_env() -> float:
    raw = os.environ.get(ERROR_RATE_ENV)
    if raw is None:
        return DEFAULT_ERROR_RATE
    try:
        rate = float(raw)
    except ValueError:
        rate = -1.0
    if not 0 <= rate <= 1:
        from spokesync.settings import SettingsError

        raise SettingsError(
            f"{ERROR_RATE_ENV} must be a share between 0 and 1 (e.g. 0.05), not {raw!r}"
        )
    return rate


@dataclass(frozen=True, slots=True)
class GateFinding:
    source: str
    partition: str | None
    reason: str

    def __str__(self) -> str:
        return f"{self.source} {self.partition or 'master'}: {self.reason}"


def quarantine_gate(
    warehouse_dir: Path, tables: Iterable[str], as_of: dt.date, error_rate: float
) -> list[GateFinding]:
    """Findings that block a mapping reading ``tables`` as of ``as_of`` (empty: it may push).

    Checked: each master table's snapshot and each daily table's ``as_of`` partition, from the
    report its last ingest left. A daily table with no file that day is not a finding (exports
    such as subscriptions may skip a day)."""
    findings: list[GateFinding] = []
    for table in sorted(t for t in tables if t in SOURCES):
        spec = SOURCES[table]
        partition = as_of.isoformat() if spec.partitioned else None
        report = load_report(Path(warehouse_dir), table, partition)
        if report is None:
            continue
        required = sorted(set(report.columns_missing) & set(spec.required_columns))
        if required:
            findings.append(
                GateFinding(
                    table,
                    partition,
                    f"required column(s) {', '.join(required)} missing from the file; every "
                    "row was quarantined",
                )
            )
        elif report.quarantine_rate > error_rate:
            findings.append(
                GateFinding(
                    table,
                    partition,
                    f"{report.rows_quarantined:,} of {report.rows_read:,} rows quarantined "
                    f"({report.quarantine_rate:.1%}, blocking above {error_rate:.0%})",
                )
            )
    return findings


def dropped_at_ingest(warehouse_dir: Path, tables: Iterable[str], as_of: dt.date) -> dict[str, int]:
    """Source rows quarantined at ingest in the tables a mapping reads as of ``as_of``, by
    ``"<source> <partition|master>"`` (only those with any): the rows the gate let through
    below its rate, which never reach HubSpot. Superseded rows are not counted — their key is
    loaded with its newest row. They are listed in the warehouse's ``quarantine`` view
    (``spokesync state quarantine``)."""
    out: dict[str, int] = {}
    for table in sorted(t for t in tables if t in SOURCES):
        partition = as_of.isoformat() if SOURCES[table].partitioned else None
        report = load_report(Path(warehouse_dir), table, partition)
        dropped = 0 if report is None else report.rows_quarantined - report.rows_superseded
        if dropped > 0:
            out[f"{table} {partition or 'master'}"] = dropped
    return out
