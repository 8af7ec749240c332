"""Each object's desired state depends on the warehouse tables its SQL reads, so a bad source
file blocks only the objects that read that source."""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg
import pandas as pd

from assets.ingestion import INGESTION_ASSETS, INGESTION_CHECKS
from assets.sync import SYNC_ASSETS
from pipelines.definitions import defs
from resources.alerts import AlertsResource
from resources.hubspot import HubSpotResource
from resources.warehouse import WarehouseResource
from spokesync.sample_data.generator import GeneratorConfig, generate
from tests.reference_tables import write_reference_tables

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
DAY = "2026-01-01"


def _deps(key: str) -> set[str]:
    graph = defs.resolve_asset_graph()
    return {k.to_user_string() for k in graph.get(dg.AssetKey(key)).parent_keys}


def test_desired_state_depends_only_on_the_tables_its_sql_reads() -> None:
    # HubSpot's pipelines and owners (reference tables) are read by hubspot_properties.
    assert _deps("companies_desired_state") == {
        "accounts",
        "users",
        "invoices",
        "product_usage",
        "subscriptions",
        "support_tickets",
        "firmographics",
        "hubspot_properties",
    }
    assert _deps("contacts_desired_state") == {"users", "product_usage", "firmographics"}
    assert _deps("deals_desired_state") == {
        "accounts",
        "subscriptions",
        "invoices",
        "users",
        "hubspot_properties",
    }
    assert _deps("tickets_desired_state") == {"support_tickets", "hubspot_properties"}


def test_a_bad_invoices_file_blocks_only_what_reads_invoices(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    generate(GeneratorConfig(accounts=20, days=1, seed=3, start=DAY), landing)
    export = landing / "erp" / "invoices" / f"invoices_{DAY}.csv"
    frame = pd.read_csv(export, dtype=str, keep_default_na=False)
    frame.drop(columns=["currency"]).to_csv(export, index=False)  # a required column is gone

    home = tmp_path / "home"
    write_reference_tables(home / "warehouse")  # as hubspot_properties last read them
    desired = [f"{o}_desired_state" for o in ("companies", "contacts", "deals", "tickets")]
    selection = [
        dg.AssetKey(k)
        for k in (
            "accounts",
            "firmographics",
            "users",
            "product_usage",
            "invoices",
            "subscriptions",
            "support_tickets",
            *desired,
        )
    ]
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [*INGESTION_ASSETS, *INGESTION_CHECKS, *SYNC_ASSETS],
            instance=instance,
            selection=selection,
            partition_key=DAY,
            resources={
                "warehouse": WarehouseResource(home=str(home), landing=str(landing)),
                "hubspot": HubSpotResource(home=str(home), env="test"),
                "alerts": AlertsResource(),
            },
            raise_on_error=False,
        )
    assert not result.success  # the invoices quarantine check is blocking
    materialized = {
        e.event_specific_data.materialization.asset_key.to_user_string()
        for e in result.get_asset_materialization_events()
    }
    # companies and deals (invoicing status) read invoices; contacts and tickets do not.
    assert set(desired) - materialized == {"companies_desired_state", "deals_desired_state"}
    started = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert not {"companies_desired_state", "deals_desired_state"} & started
    assert {"contacts_desired_state", "tickets_desired_state"} <= started
