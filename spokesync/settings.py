"""Runtime settings shared by the CLI, the engine and the Dagster resources.

Everything comes from flags or environment variables, never from files in the repository:

- ``SPOKESYNC_HOME``     where the warehouse and the state live (default ``./data``)
- ``SPOKESYNC_LANDING``  landing files (default ``$SPOKESYNC_HOME/landing``)
- ``SPOKESYNC_ENV``      ``dev`` (default), ``test`` or ``prod``
- ``HUBSPOT_BASE_URL``   default: the local sandbox in ``dev``/``test``, ``https://api.hubapi.com`` in ``prod``
- ``HUBSPOT_ACCESS_TOKEN`` (or ``HUBSPOT_ACCESS_TOKEN_<ENV>``) the private-app / service-key token

Secrets are held as :class:`pydantic.SecretStr` so they never print.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, SecretStr

Environment = Literal["dev", "test", "prod"]

SANDBOX_DEFAULT_PORT = 8765
SANDBOX_DEFAULT_URL = f"http://127.0.0.1:{SANDBOX_DEFAULT_PORT}"
# The sandbox accepts this token when started without --token. It is a documented
# development value, not a secret, and is only ever sent to a loopback address.
SANDBOX_DEV_TOKEN = "pat-sandbox-dev-token"
HUBSPOT_PROD_URL = "https://api.hubapi.com"


class SettingsError(ValueError):
    """A setting is missing or unsafe (e.g. a non-loopback URL without an explicit token)."""


def is_loopback(url: str) -> bool:
    host = (urlparse(url).hostname or "").lower()
    return host in {"127.0.0.1", "localhost", "::1"} or host.startswith("127.")


class Settings(BaseModel):
    """Resolved settings. Build with :meth:`from_env`; every field can be overridden by a flag."""

    home: Path
    landing: Path
    env: Environment = "dev"
    hubspot_base_url: str
    hubspot_token: SecretStr | None = None

    @property
    def warehouse_dir(self) -> Path:
        """Validated rows, as Parquet (see :mod:`spokesync.warehouse`)."""
        return self.home / "warehouse"

    @property
    def state_db(self) -> Path:
        """One DuckDB state store per environment (snapshot, sync log, dead letters, plans)."""
        return self.home / "state" / f"{self.env}.duckdb"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        e = os.environ if environ is None else environ
        env = str(overrides.pop("env", None) or e.get("SPOKESYNC_ENV", "dev"))
        if env not in ("dev", "test", "prod"):
            raise SettingsError(f"SPOKESYNC_ENV must be dev, test or prod, not {env!r}")
        home = Path(str(overrides.pop("home", None) or e.get("SPOKESYNC_HOME", "data")))
        landing = Path(
            str(overrides.pop("landing", None) or e.get("SPOKESYNC_LANDING", home / "landing"))
        )
        default_url = HUBSPOT_PROD_URL if env == "prod" else SANDBOX_DEFAULT_URL
        url = str(overrides.pop("hubspot_base_url", None) or e.get("HUBSPOT_BASE_URL", default_url))
        token = overrides.pop("hubspot_token", None) or e.get(
            f"HUBSPOT_ACCESS_TOKEN_{env.upper()}", e.get("HUBSPOT_ACCESS_TOKEN")
        )
        return cls(
            home=home,
            landing=landing,
            env=env,  # type: ignore[arg-type]
            hubspot_base_url=url.rstrip("/"),
            hubspot_token=SecretStr(str(token)) if token else None,
            **overrides,  # type: ignore[arg-type]
        )

    def resolved_token(self) -> str:
        """The token to send. Loopback targets fall back to the sandbox's development token;
        any other target requires the environment's token to be set explicitly."""
        if self.hubspot_token is not None:
            return self.hubspot_token.get_secret_value()
        if is_loopback(self.hubspot_base_url):
            return SANDBOX_DEV_TOKEN
        raise SettingsError(
            f"HUBSPOT_ACCESS_TOKEN_{self.env.upper()} (or HUBSPOT_ACCESS_TOKEN) must be set to "
            f"write to {self.hubspot_base_url}"
        )
