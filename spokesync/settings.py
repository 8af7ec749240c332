"""Runtime settings shared by the CLI, the engine and the Dagster resources.

Everything comes from flags or environment variables, never from files in the repository:

- ``SPOKESYNC_HOME``     where the warehouse and the state live (default ``./data``)
- ``SPOKESYNC_LANDING``  landing files (default ``$SPOKESYNC_HOME/landing``)
- ``SPOKESYNC_ENV``      ``dev`` (default), ``test`` or ``prod``
- ``SPOKESYNC_MEMORY_LIMIT`` / ``SPOKESYNC_TEMP_DIR``  DuckDB's memory in one process (default
  ``1.5GB``) and where it spills (see :mod:`spokesync.duckdb_memory`)
- ``HUBSPOT_BASE_URL_<ENV>`` (else ``HUBSPOT_BASE_URL``) default: the local sandbox in
  ``dev``/``test``, ``https://api.hubapi.com`` in ``prod``
- ``HUBSPOT_ACCESS_TOKEN_<ENV>`` the environment's private-app / service-key token; the
  generic ``HUBSPOT_ACCESS_TOKEN`` only ever reaches a loopback sandbox (dev/test), never prod

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


GENERIC_TOKEN = "HUBSPOT_ACCESS_TOKEN"
FLAG = "--token"


def token_variable(env: str) -> str:
    """The environment's own token variable, e.g. ``HUBSPOT_ACCESS_TOKEN_PROD``."""
    return f"{GENERIC_TOKEN}_{env.upper()}"


class Settings(BaseModel):
    """Resolved settings. Build with :meth:`from_env`; every field can be overridden by a flag."""

    home: Path
    landing: Path
    env: Environment = "dev"
    hubspot_base_url: str
    hubspot_token: SecretStr | None = None
    token_source: str | None = None  # the variable (or flag) the token came from

    @property
    def warehouse_dir(self) -> Path:
        """Validated rows, as Parquet (see :mod:`spokesync.warehouse`)."""
        return self.home / "warehouse"

    @property
    def state_db(self) -> Path:
        """One DuckDB state store per environment (snapshot, sync log, dead letters, plans)."""
        return self.home / "state" / f"{self.env}.duckdb"

    @property
    def webhook_inbox(self) -> Path:
        """Accepted HubSpot webhook events (SQLite; see :mod:`spokesync.webhooks.inbox`)."""
        return self.home / "webhooks" / f"{self.env}.sqlite"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Per environment: base URL ``HUBSPOT_BASE_URL_<ENV>`` (else ``HUBSPOT_BASE_URL``,
        else the sandbox, or HubSpot in prod) and token ``HUBSPOT_ACCESS_TOKEN_<ENV>``. The
        generic ``HUBSPOT_ACCESS_TOKEN`` is read in dev and test only, and only ever sent to a
        loopback address (see :meth:`resolved_token`); prod never reads it."""
        e = os.environ if environ is None else environ
        env = str(overrides.pop("env", None) or e.get("SPOKESYNC_ENV", "dev"))
        if env not in ("dev", "test", "prod"):
            raise SettingsError(f"SPOKESYNC_ENV must be dev, test or prod, not {env!r}")
        home = Path(str(overrides.pop("home", None) or e.get("SPOKESYNC_HOME", "data")))
        landing = Path(
            str(overrides.pop("landing", None) or e.get("SPOKESYNC_LANDING", home / "landing"))
        )
        from spokesync.duckdb_memory import memory_budget, temp_root

        memory_budget(e), temp_root(e)  # a bad SPOKESYNC_MEMORY_LIMIT / _TEMP_DIR fails here
        default_url = HUBSPOT_PROD_URL if env == "prod" else SANDBOX_DEFAULT_URL
        url = str(
            overrides.pop("hubspot_base_url", None)
            or e.get(f"HUBSPOT_BASE_URL_{env.upper()}")
            or e.get("HUBSPOT_BASE_URL", default_url)
        )
        own = token_variable(env)
        given = overrides.pop("hubspot_token", None)
        source = overrides.pop("token_source", None)
        if given:
            token, source = str(given), str(source or FLAG)
        elif e.get(own):
            token, source = e[own], own
        elif env != "prod" and e.get(GENERIC_TOKEN):
            token, source = e[GENERIC_TOKEN], GENERIC_TOKEN
        else:
            token, source = None, None
        return cls(
            home=home,
            landing=landing,
            env=env,  # type: ignore[arg-type]
            hubspot_base_url=url.rstrip("/"),
            hubspot_token=SecretStr(token) if token else None,
            token_source=source,
            **overrides,  # type: ignore[arg-type]
        )

    def resolved_token(self) -> str:
        """The token to send, or :class:`SettingsError` naming the variable to set.

        - prod: only ``HUBSPOT_ACCESS_TOKEN_PROD`` (or ``--token``), whatever the URL;
        - dev/test, a loopback URL (the sandbox): the environment's token, the generic one, or
          the sandbox's development token;
        - dev/test, any other URL: only that environment's own token variable (or ``--token``),
          so a development shell's ``HUBSPOT_ACCESS_TOKEN`` never writes to a real portal."""
        own = token_variable(self.env)
        explicit = self.hubspot_token is not None and self.token_source not in (GENERIC_TOKEN,)
        if self.env == "prod":
            if explicit:
                return self.hubspot_token.get_secret_value()  # type: ignore[union-attr]
            raise SettingsError(
                f"{own} must be set in prod (HUBSPOT_ACCESS_TOKEN is never used there): the "
                f"private-app or service-key token for {self.hubspot_base_url}"
            )
        if is_loopback(self.hubspot_base_url):
            if self.hubspot_token is not None:
                return self.hubspot_token.get_secret_value()
            return SANDBOX_DEV_TOKEN
        if explicit:
            return self.hubspot_token.get_secret_value()  # type: ignore[union-attr]
        hint = (
            f" ({GENERIC_TOKEN} is set, but it is only sent to a loopback sandbox in {self.env})"
            if self.token_source == GENERIC_TOKEN
            else ""
        )
        raise SettingsError(
            f"{self.hubspot_base_url} is not a loopback address: set {own} to write to it from "
            f"SPOKESYNC_ENV={self.env}{hint}"
        )
