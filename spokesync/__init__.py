"""spokesync: keep HubSpot CRM in step with the warehouse.

The engine package. Plain Python with no Dagster imports: ingestion and validation, mapping
specs, canonical values, the state store, the diff, the HubSpot client, the sandbox server
and the CLI all live here. ``assets/``, ``resources/`` and ``pipelines/`` wrap it for Dagster.
"""

__version__ = "0.1.0"
