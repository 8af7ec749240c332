"""The per-process sandbox server (fixture ``sandbox_server`` in tests/conftest.py), restored
for each test."""

from __future__ import annotations

from spokesync.sandbox.launcher import SandboxProcess


def restored(server: SandboxProcess) -> SandboxProcess:
    """``server`` as just started (``SandboxProcess.restore``): an empty portal, no faults,
    its start's settings, fresh counters and request log; started again if a test stopped it
    or it died."""
    if server.process is None or server.process.poll() is not None:
        server.start()
    server.restore()
    return server
