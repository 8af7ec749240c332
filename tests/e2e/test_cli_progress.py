"""Long CLI steps report progress; off a terminal (CI logs, pipes) it is one line per stage.

The real commands as subprocesses, stderr a pipe: ``spokesync ingest`` over every landed day,
``spokesync hubspot ensure-properties`` (the install) and ``spokesync sync`` (its pushes) each
print exactly one summary line per stage — counts, seconds, rate, batches — and no live
redraws (no carriage returns). stdout stays the commands' own output.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from spokesync.ingest.contract import MASTER_SOURCES, PARTITIONED_SOURCES
from spokesync.mapping.loader import load_mappings
from spokesync.sample_data.generator import GeneratorConfig, generate
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.sync.runner import default_mapping_paths

pytestmark = pytest.mark.e2e
DAYS = 2


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spokesync.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def _stage_lines(stderr: str, stage: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"{stage}:")]


def test_ingest_install_and_push_print_one_progress_line_per_stage(tmp_path: Path) -> None:
    home = tmp_path / "home"
    generate(
        GeneratorConfig(accounts=8, days=DAYS, seed=3, mess_rate=0.0, truncated_line_day=-1),
        home / "landing",
    )
    mappings = load_mappings(default_mapping_paths())
    with SandboxProcess(tmp_path / "sandbox.sqlite", rate_limit=1000) as sandbox:
        env = {
            **os.environ,
            "SPOKESYNC_HOME": str(home),
            "SPOKESYNC_ENV": "test",
            "HUBSPOT_BASE_URL": sandbox.base_url,
        }
        ingest = _cli(env, "ingest")
        assert ingest.returncode == 0, ingest.stderr
        partitions = len(MASTER_SOURCES) + len(PARTITIONED_SOURCES) * DAYS
        rows = sum(int(line.split()[2].replace(",", "")) for line in ingest.stdout.splitlines()[1:])
        [line] = _stage_lines(ingest.stderr, "ingest")
        assert re.fullmatch(
            rf"ingest: {rows:,} rows in [\d.]+ s \([\d,]+ rows/s\), {partitions} partitions",
            line,
        ), line

        install = _cli(env, "hubspot", "ensure-properties")
        assert install.returncode == 0, install.stderr
        created = sum(int(m.group(1)) for m in re.finditer(r": created (\d+) ", install.stdout))
        assert created > 0, install.stdout
        [line] = _stage_lines(install.stderr, "install properties")
        assert re.fullmatch(
            rf"install properties: {created} properties in [\d.]+ s \([\d,]+ properties/s\), "
            rf"{len(mappings)} objects",
            line,
        ), line

        sync = _cli(env, "sync", "--no-ingest")
        assert sync.returncode == 0, sync.stdout + sync.stderr
        for m in mappings:
            pushed = len(sandbox.export(m.object_type))
            [line] = _stage_lines(sync.stderr, f"push {m.object_type}")
            assert re.fullmatch(
                rf"push {m.object_type}: {pushed:,} records in [\d.]+ s \([\d,]+ records/s\), "
                r"\d+ batch(es)?",
                line,
            ), line
        # Installed already: the sync's own ensure step creates nothing and prints nothing.
        assert not [line for line in sync.stderr.splitlines() if line.startswith("install ")]
    for out in (ingest, install, sync):
        assert "\r" not in out.stderr
