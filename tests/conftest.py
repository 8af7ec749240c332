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


@pytest.fixture(autouse=True)
def _secrets_of_this_test_only() -> Iterator[None]:
    """Every HubSpot client registers its token with the process-wide redactor; forget a test's
    tokens after it, so one test's client cannot change what another test's text redacts to."""
    from spokesync.hubspot import redact

    before = set(redact._secrets)
    yield
    redact._secrets.intersection_update(before)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Make ``--dist loadgroup`` honour ``xdist_group`` marks under pytest 9.

    pytest-xdist 3.8 groups a test by appending ``@<group>`` to ``item._nodeid``; pytest 9
    keeps the node id in ``item._id`` and never reads ``_nodeid``, so every mark was silently
    ignored and grouped tests (the live Dagster deployments, a module's shared sample) ran on
    both workers at once. Do what xdist means on its workers (``config.option.loadgroup``),
    once: a node id that already carries the suffix is left alone."""
    if not getattr(config.option, "loadgroup", False):
        return
    from _pytest.nodeid import coerce_node_id

    for item in items:
        names = sorted(
            {
                str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                for mark in item.iter_markers("xdist_group")
            }
        )
        suffix = "@" + "_".join(names)
        if names and not item.nodeid.endswith(suffix):
            item._id = coerce_node_id(item.nodeid + suffix)
