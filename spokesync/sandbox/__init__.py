"""A faithful local HubSpot CRM API server (``spokesync sandbox``); see ``docs/sandbox.md``.

The package is plain Python (Starlette + SQLite): no Dagster imports.
"""
