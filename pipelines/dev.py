"""``make dev``: the Dagster UI on the demo's data, with the HubSpot sandbox on loopback.

Starts the sandbox on port 8765 (reusing one that already answers there), then runs
``dagster dev -w workspace.yaml`` until Ctrl-C, and stops the sandbox.
"""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import SANDBOX_DEFAULT_PORT, SANDBOX_DEFAULT_URL, Settings


def _already_running() -> bool:
    try:
        return httpx.get(SANDBOX_DEFAULT_URL + "/", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def main() -> int:
    settings = Settings.from_env()
    sandbox = None
    if not _already_running():
        sandbox = SandboxProcess(settings.home / "sandbox.sqlite", port=SANDBOX_DEFAULT_PORT)
        sandbox.start()
    print(f"HubSpot sandbox on {SANDBOX_DEFAULT_URL}; Dagster UI on http://127.0.0.1:3000")
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
