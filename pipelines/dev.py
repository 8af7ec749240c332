"""``make dev``: the Dagster UI on the demo's data, with the HubSpot sandbox on loopback.

Starts the sandbox on port 8765 (reusing one that already answers there), then runs
``dagster dev -w workspace.yaml`` until Ctrl-C, and stops the sandbox. A generated sample that
ends before yesterday (made on an earlier day) first gets the missing days appended, so the
daily partitions (first landed day … yesterday) are exactly the days that have data. It prints
links that open the Materialize dialog with those days selected (Dagster's own dialog opens
with nothing selected).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import httpx

from spokesync.ingest.contract import PARTITIONED_SOURCES
from spokesync.ingest.engine import landed_partitions
from spokesync.sample_data.generator import catch_up
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import SANDBOX_DEFAULT_PORT, SANDBOX_DEFAULT_URL, Settings


def _already_running() -> bool:
    try:
        return httpx.get(SANDBOX_DEFAULT_URL + "/", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def landed_range(landing: Path) -> tuple[str, str] | None:
    """The first and last day with landing files (any daily source)."""
    days = sorted({d for s in PARTITIONED_SOURCES for d in landed_partitions(s, landing)})
    return (days[0], days[-1]) if days else None


def dialog_link(ui: str, asset: str, days: tuple[str, str]) -> str:
    """The asset's page; its Materialize dialog opens with ``days`` selected (Dagster reads
    the ``default_range`` query parameter of the page)."""
    return f"{ui}/assets/{asset}?default_range={quote(f'[{days[0]}...{days[1]}]')}"


def main() -> int:
    settings = Settings.from_env()
    appended = catch_up(settings.landing)
    if appended:
        print(f"sample data: appended {appended[0]} … {appended[-1]} so it ends yesterday")
    sandbox = None
    if not _already_running():
        sandbox = SandboxProcess(settings.home / "sandbox.sqlite", port=SANDBOX_DEFAULT_PORT)
        sandbox.start()
    ui = "http://127.0.0.1:3000"
    print(f"HubSpot sandbox on {SANDBOX_DEFAULT_URL}; Dagster UI on {ui}")
    days = landed_range(settings.landing)
    if days:
        print(f"landed days {days[0]} … {days[1]}; backfill them from (Materialize…):")
        for asset in ("invoices", "contacts_push"):
            print(f"  {dialog_link(ui, asset, days)}")
    env = {**os.environ, "HUBSPOT_BASE_URL": SANDBOX_DEFAULT_URL}
    cmd = [os.path.join(os.path.dirname(sys.executable), "dagster"), "dev", "-w", "workspace.yaml"]
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 0
    finally:
        if sandbox is not None:
            sandbox.stop()


if __name__ == "__main__":
    sys.exit(main())
