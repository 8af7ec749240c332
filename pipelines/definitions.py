"""The Dagster code location: lists assembled from assets/ and pipelines/ modules.

To add a feature, import its lists and append them below (a 2-line change).
"""

from __future__ import annotations

import os
import warnings

import dagster as dg

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

from assets.adoption import ADOPTION_ASSETS, ADOPTION_JOBS  # noqa: E402
from assets.ingestion import INGESTION_ASSETS, INGESTION_CHECKS  # noqa: E402
from assets.lists import LIST_ASSETS  # noqa: E402
from assets.sync import SYNC_ASSETS  # noqa: E402
from pipelines.alerts import SENSORS as ALERT_SENSORS  # noqa: E402
from pipelines.explain_job import JOBS as EXPLAIN_JOBS  # noqa: E402
from pipelines.ingestion_jobs import JOBS as INGESTION_JOBS  # noqa: E402
from pipelines.ingestion_jobs import SCHEDULES as INGESTION_SCHEDULES  # noqa: E402
from pipelines.ingestion_jobs import SENSORS as INGESTION_SENSORS  # noqa: E402
from pipelines.sync_jobs import JOBS as SYNC_JOBS  # noqa: E402
from pipelines.sync_jobs import SCHEDULES as SYNC_SCHEDULES  # noqa: E402
from pipelines.sync_jobs import SENSORS as SYNC_SENSORS  # noqa: E402
from pipelines.webhook_jobs import JOBS as WEBHOOK_JOBS  # noqa: E402
from pipelines.webhook_jobs import SENSORS as WEBHOOK_SENSORS  # noqa: E402
from resources.alerts import AlertsResource  # noqa: E402
from resources.hubspot import HubSpotResource  # noqa: E402
from resources.warehouse import WarehouseResource  # noqa: E402
from spokesync.settings import GENERIC_TOKEN, token_variable  # noqa: E402

ASSETS = [*INGESTION_ASSETS, *SYNC_ASSETS, *ADOPTION_ASSETS, *LIST_ASSETS]
ASSET_CHECKS = [*INGESTION_CHECKS]
JOBS = [*INGESTION_JOBS, *SYNC_JOBS, *WEBHOOK_JOBS, *ADOPTION_JOBS, *EXPLAIN_JOBS]
SCHEDULES = [*INGESTION_SCHEDULES, *SYNC_SCHEDULES]
SENSORS = [*INGESTION_SENSORS, *SYNC_SENSORS, *ALERT_SENSORS, *WEBHOOK_SENSORS]
# The token is an EnvVar reference (resolved in the run process, never shown). Which variable:
# the environment's own HUBSPOT_ACCESS_TOKEN_<ENV>, else (dev/test only) the generic one, which
# Settings sends to a loopback sandbox only; without either, the sandbox's development token.
_ENV = os.environ.get("SPOKESYNC_ENV", "dev")
_TOKEN = next(
    (
        v
        for v in (token_variable(_ENV), *((GENERIC_TOKEN,) if _ENV != "prod" else ()))
        if os.environ.get(v)
    ),
    None,
)
RESOURCES: dict[str, object] = {
    "warehouse": WarehouseResource(),
    "alerts": AlertsResource(),
    "hubspot": HubSpotResource(
        access_token=dg.EnvVar(_TOKEN) if _TOKEN else None, token_variable=_TOKEN
    ),
}

# SPOKESYNC_EXECUTOR=in_process runs every step in its run's own process (one process start
# per run instead of one per step: small machines, tests). Unset: Dagster's default executor
# (multiprocess; a run's config may still choose `execution: {config: {in_process: {}}}`).
_EXECUTOR_NAME = os.environ.get("SPOKESYNC_EXECUTOR", "")
if _EXECUTOR_NAME not in ("", "in_process"):
    raise ValueError(f"SPOKESYNC_EXECUTOR={_EXECUTOR_NAME!r}: use in_process, or leave it unset")
_EXECUTOR = dg.in_process_executor if _EXECUTOR_NAME == "in_process" else None

defs = dg.Definitions(
    executor=_EXECUTOR,
    assets=ASSETS,
    asset_checks=ASSET_CHECKS,
    jobs=JOBS,
    schedules=SCHEDULES,
    sensors=SENSORS,
    resources=RESOURCES,
)
