"""The Dagster code location: lists assembled from assets/ and pipelines/ modules.

To add a feature, import its lists and append them below (a 2-line change).
"""

from __future__ import annotations

import os
import warnings

import dagster as dg

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

from assets.ingestion import INGESTION_ASSETS, INGESTION_CHECKS  # noqa: E402
from assets.sync import SYNC_ASSETS  # noqa: E402
from pipelines.ingestion_jobs import JOBS as INGESTION_JOBS  # noqa: E402
from pipelines.ingestion_jobs import SCHEDULES as INGESTION_SCHEDULES  # noqa: E402
from pipelines.ingestion_jobs import SENSORS as INGESTION_SENSORS  # noqa: E402
from pipelines.sync_jobs import JOBS as SYNC_JOBS  # noqa: E402
from pipelines.sync_jobs import SCHEDULES as SYNC_SCHEDULES  # noqa: E402
from pipelines.sync_jobs import SENSORS as SYNC_SENSORS  # noqa: E402
from resources.hubspot import HubSpotResource  # noqa: E402
from resources.warehouse import WarehouseResource  # noqa: E402

ASSETS = [*INGESTION_ASSETS, *SYNC_ASSETS]
ASSET_CHECKS = [*INGESTION_CHECKS]
JOBS = [*INGESTION_JOBS, *SYNC_JOBS]
SCHEDULES = [*INGESTION_SCHEDULES, *SYNC_SCHEDULES]
SENSORS = [*INGESTION_SENSORS, *SYNC_SENSORS]
# The token is an EnvVar reference (resolved in the run process, never shown); without it the
# resource falls back to the sandbox's development token, which is only sent to loopback.
_TOKEN = next(
    (
        v
        for v in (
            "HUBSPOT_ACCESS_TOKEN_" + os.environ.get("SPOKESYNC_ENV", "dev").upper(),
            "HUBSPOT_ACCESS_TOKEN",
        )
        if v in os.environ
    ),
    None,
)
RESOURCES: dict[str, object] = {
    "warehouse": WarehouseResource(),
    "hubspot": HubSpotResource(access_token=dg.EnvVar(_TOKEN) if _TOKEN else None),
}

defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=ASSET_CHECKS,
    jobs=JOBS,
    schedules=SCHEDULES,
    sensors=SENSORS,
    resources=RESOURCES,
)
