from tests.e2e.conftest import home, sandbox, warehouse_template  # noqa: F401 - fixtures
