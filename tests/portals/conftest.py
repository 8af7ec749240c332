"""Fixtures for the existing-portal tests: the e2e warehouse and a real sandbox on loopback."""

from tests.e2e.conftest import (  # noqa: F401
    fixed_settings,
    fixed_warehouse_template,
    home,
    sandbox,
    settings,
    warehouse_template,
)
