"""The Dagster code location: lists assembled from assets/ and pipelines/ modules.

To add a feature, import its lists and append them below (a 2-line change).
"""

from __future__ import annotations

import warnings

import dagster as dg

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

from assets.ingestion import INGESTION_ASSETS, INGESTION_CHECKS  # noqa: E402
from pipelines.ingestion_jobs import JOBS as INGESTION_JOBS  # noqa: E402
from pipelines.ingestion_jobs import SCHEDULES as INGESTION_SCHEDULES  # noqa: E402
from pipelines.ingestion_jobs import SENSORS as INGESTION_SENSORS  # noqa: E402
from resources.warehouse import WarehouseResource  # noqa: E402

ASSETS = [*INGESTION_ASSETS]
ASSET_CHECKS = [*INGESTION_CHECKS]
JOBS = [*INGESTION_JOBS]
SCHEDULES = [*INGESTION_SCHEDULES]
SENSORS = [*INGESTION_SENSORS]
RESOURCES: dict[str, object] = {"warehouse": WarehouseResource()}

defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=ASSET_CHECKS,
    jobs=JOBS,
    schedules=SCHEDULES,
    sensors=SENSORS,
    resources=RESOURCES,
)
