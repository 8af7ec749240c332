"""The CLI applies the quarantine gate like Dagster, and it blocks only the mappings that read
the failing source."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

from spokesync.ingest.engine import landed_partitions
from spokesync.mapping.lineage import tables_read
from spokesync.mapping.loader import load_mappings
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.sync.runner import default_mapping_paths


def _break_invoices(landing: Path, day: str) -> int:
    """Every invoice of ``day`` gets an unknown currency; returns how many there are."""
    path = landing / "erp" / "invoices" / f"invoices_{day}.csv"
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["currency"] = "XYZ"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def test_cli_sync_blocks_only_the_mappings_reading_a_quarantined_source(
    home: Path, sandbox: SandboxProcess
) -> None:
    day = landed_partitions("invoices", home / "landing")[-1]
    n = _break_invoices(home / "landing", day)
    env = {
        **os.environ,
        "SPOKESYNC_HOME": str(home),
        "SPOKESYNC_ENV": "test",
        "HUBSPOT_BASE_URL": sandbox.base_url,
    }
    done = subprocess.run(
        [sys.executable, "-m", "spokesync.cli", "sync", "--as-of", day],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = done.stdout
    assert done.returncode == 5, out  # ExitCode.GATE_BLOCKED
    assert "result: gate_blocked (exit 5)" in out
    assert "Traceback" not in done.stderr
    mappings = load_mappings(default_mapping_paths())
    reading = {m.object_type for m in mappings if "invoices" in tables_read(m)}
    assert "companies" in reading and "contacts" not in reading
    exported = sandbox.export()
    for m in mappings:
        (line,) = [x for x in out.splitlines() if x.strip().startswith(m.object_type + " ")]
        if m.object_type in reading:
            assert "blocked by the quarantine gate" in line
            assert (
                f"invoices {day}: {n:,} of {n:,} rows quarantined (100.0%, blocking above 5%)"
                in line
            )
            assert f"spokesync ingest --source invoices --date {day}" in line
            assert len(exported[m.object_type]) == 0  # nothing planned or sent
        else:  # does not read invoices: pushed as usual
            assert "blocked" not in line
            assert len(exported[m.object_type]) > 0
