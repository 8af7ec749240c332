"""Test-wide settings, applied before any test module imports the code location."""

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from spokesync.sandbox.launcher import SandboxProcess

# Tests that write dates by hand use 2026; partitions run from there to yesterday, so tests
# with sample data ending yesterday (the default) fit too.
os.environ.setdefault("SPOKESYNC_PARTITIONS_START", "2026-01-01")


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator["SandboxProcess"]:
    """One sandbox server per test process at 1000 requests / 10 s (a start costs 1-3 s of
    imports). Tests take it through a function fixture that returns
    :func:`tests.shared_sandbox.restored`, so each sees it as just started: an empty portal, no
    faults, the start's settings, fresh counters and request log. Tests that need other start
    arguments start their own."""
    from spokesync.sandbox.launcher import SandboxProcess

    with SandboxProcess(
        tmp_path_factory.mktemp("sandbox") / "sandbox.sqlite", rate_limit=1000
    ) as sb:
        yield sb
