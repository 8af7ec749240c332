"""HubSpot and state-store settings for the sync assets, as a Dagster resource.

The token is a Dagster ``EnvVar`` (see ``pipelines/definitions.py``): it is resolved in the run
process and never shown in the UI, logs or metadata. Everything else defaults from the same
environment variables the CLI reads (:class:`spokesync.settings.Settings`).
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from pydantic import Field

from spokesync.hubspot.push import PushConfig
from spokesync.rollout import Rollout
from spokesync.settings import Settings
from spokesync.sync.runner import SyncOptions

# The Dagster pool of this code location's portal: every step that spends the portal's HubSpot
# budget or writes its state store runs in it (limit 1). One pool per portal, so two portals
# never wait for each other: set SPOKESYNC_HUBSPOT_POOL=hubspot_api_<portal> in each portal's
# code server (docs/deployment.md). Read when the definitions load.
HUBSPOT_POOL = os.environ.get("SPOKESYNC_HUBSPOT_POOL") or "hubspot_api"


class HubSpotResource(dg.ConfigurableResource):
    """Where to push (base URL, token), how hard (rate limit, concurrency), and the state DB."""

    home: str | None = Field(default=None, description="SPOKESYNC_HOME (default ./data)")
    env: str | None = Field(default=None, description="SPOKESYNC_ENV: dev, test or prod")
    base_url: str | None = Field(default=None, description="HUBSPOT_BASE_URL")
    access_token: str | None = Field(default=None, description="set from EnvVar only")
    token_variable: str | None = Field(
        default=None, description="the variable access_token is read from (for the env guard)"
    )
    rate_limit_per_10s: int = Field(default=190, description="the portal's ten-second limit")
    daily_budget: int | None = Field(default=None, description="requests a run may use today")
    concurrency: int = Field(default=8, description="batches in flight")
    mappings_dir: str | None = Field(default=None, description="default: the repo's mappings/")

    def settings(self) -> Settings:
        return Settings.from_env(
            home=self.home,
            env=self.env,
            hubspot_base_url=self.base_url,
            hubspot_token=self.access_token,
            token_source=self.token_variable if self.access_token else None,
        )

    def mapping_paths(self) -> list[Path]:
        if self.mappings_dir:
            return sorted(Path(self.mappings_dir).glob("*.yaml"))
        from spokesync.sync.runner import default_mapping_paths

        return default_mapping_paths()

    def options(
        self,
        *,
        shadow: bool = False,
        rollout: Rollout | None = None,
        run_id: str | None = None,
        ensure_properties: bool = True,
    ) -> SyncOptions:
        return SyncOptions(
            mapping_paths=self.mapping_paths(),
            shadow=shadow,
            rollout=rollout,
            run_id=run_id,
            ensure_properties=ensure_properties,
            push=PushConfig(concurrency=self.concurrency),
            rate_limit_per_10s=self.rate_limit_per_10s,
            daily_budget=self.daily_budget,
        )
