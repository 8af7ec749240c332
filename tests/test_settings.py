"""Settings: environment variables, the loopback-only development token, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from spokesync.settings import (
    HUBSPOT_PROD_URL,
    SANDBOX_DEFAULT_URL,
    SANDBOX_DEV_TOKEN,
    Settings,
    SettingsError,
)


def test_defaults_are_the_local_sandbox_and_data_folder() -> None:
    s = Settings.from_env({})
    assert (s.env, s.home, s.landing) == ("dev", Path("data"), Path("data/landing"))
    assert s.hubspot_base_url == SANDBOX_DEFAULT_URL
    assert s.resolved_token() == SANDBOX_DEV_TOKEN
    assert s.state_db == Path("data/state/dev.duckdb")


def test_prod_targets_hubspot_and_refuses_to_write_without_its_token() -> None:
    s = Settings.from_env({"SPOKESYNC_ENV": "prod"})
    assert s.hubspot_base_url == HUBSPOT_PROD_URL
    with pytest.raises(SettingsError, match="HUBSPOT_ACCESS_TOKEN_PROD"):
        s.resolved_token()


def test_a_non_loopback_url_never_gets_the_development_token() -> None:
    s = Settings.from_env({"HUBSPOT_BASE_URL": "https://hubspot.example.com/"})
    assert s.hubspot_base_url == "https://hubspot.example.com"
    with pytest.raises(SettingsError):
        s.resolved_token()


def test_the_environments_own_token_wins_and_never_prints() -> None:
    env = {
        "SPOKESYNC_ENV": "test",
        "HUBSPOT_ACCESS_TOKEN": "pat-generic",
        "HUBSPOT_ACCESS_TOKEN_TEST": "pat-test-secret",
    }
    s = Settings.from_env(env)
    assert s.resolved_token() == "pat-test-secret"
    assert "pat-test-secret" not in repr(s) and "pat-test-secret" not in str(s.model_dump())
    assert s.state_db == Path("data/state/test.duckdb")


def test_flags_override_the_environment_and_bad_env_names_are_refused() -> None:
    s = Settings.from_env({"SPOKESYNC_HOME": "/srv/a"}, home=Path("/srv/b"))
    assert s.home == Path("/srv/b") and s.landing == Path("/srv/b/landing")
    with pytest.raises(SettingsError, match="staging"):
        Settings.from_env({"SPOKESYNC_ENV": "staging"})
