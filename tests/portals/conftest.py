"""Fixtures for the existing-portal tests: the e2e warehouse and a real sandbox on loopback."""

from tests.e2e.conftest import home, sandbox, settings, warehouse_template  # noqa: F401
