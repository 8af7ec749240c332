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


def test_dev_with_the_generic_token_refuses_a_real_portal() -> None:
    # Found: dev + HUBSPOT_BASE_URL=https://api.hubapi.com + HUBSPOT_ACCESS_TOKEN would write.
    env = {"HUBSPOT_BASE_URL": HUBSPOT_PROD_URL, "HUBSPOT_ACCESS_TOKEN": "pat-na1-generic"}
    s = Settings.from_env(env)
    with pytest.raises(SettingsError) as e:
        s.resolved_token()
    assert str(e.value) == (
        f"{HUBSPOT_PROD_URL} is not a loopback address: set HUBSPOT_ACCESS_TOKEN_DEV to write to "
        "it from SPOKESYNC_ENV=dev (HUBSPOT_ACCESS_TOKEN is set, but it is only sent to a "
        "loopback sandbox in dev)"
    )
    assert "pat-na1-generic" not in str(e.value)
    # The environment's own variable is the explicit opt-in.
    own = Settings.from_env({**env, "HUBSPOT_ACCESS_TOKEN_DEV": "pat-na1-dev"})
    assert own.resolved_token() == "pat-na1-dev"
    # On loopback (the sandbox) the generic token is fine.
    local = Settings.from_env({"HUBSPOT_ACCESS_TOKEN": "pat-local"})
    assert local.resolved_token() == "pat-local"


@pytest.mark.parametrize("url", [HUBSPOT_PROD_URL, SANDBOX_DEFAULT_URL])
def test_prod_never_falls_back_to_the_generic_token(url: str) -> None:
    env = {"SPOKESYNC_ENV": "prod", "HUBSPOT_BASE_URL": url, "HUBSPOT_ACCESS_TOKEN": "pat-x"}
    s = Settings.from_env(env)
    assert s.hubspot_token is None
    with pytest.raises(SettingsError, match="^HUBSPOT_ACCESS_TOKEN_PROD must be set in prod"):
        s.resolved_token()
    ok = Settings.from_env({**env, "HUBSPOT_ACCESS_TOKEN_PROD": "pat-prod"})
    assert ok.resolved_token() == "pat-prod"
    assert ok.state_db == Path("data/state/prod.duckdb")


def test_each_environment_has_its_own_base_url_variable() -> None:
    env = {
        "SPOKESYNC_ENV": "test",
        "HUBSPOT_BASE_URL": "http://127.0.0.1:9999",
        "HUBSPOT_BASE_URL_TEST": "http://127.0.0.1:7777/",
    }
    assert Settings.from_env(env).hubspot_base_url == "http://127.0.0.1:7777"
    assert Settings.from_env({**env, "SPOKESYNC_ENV": "dev"}).hubspot_base_url == (
        "http://127.0.0.1:9999"
    )


def test_the_dagster_resource_applies_the_same_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    from resources.hubspot import HubSpotResource

    monkeypatch.delenv("SPOKESYNC_ENV", raising=False)
    generic = HubSpotResource(
        base_url=HUBSPOT_PROD_URL, access_token="pat-generic", token_variable="HUBSPOT_ACCESS_TOKEN"
    )
    with pytest.raises(SettingsError, match="set HUBSPOT_ACCESS_TOKEN_DEV"):
        generic.settings().resolved_token()
    own = HubSpotResource(
        base_url=HUBSPOT_PROD_URL, access_token="pat-dev", token_variable="HUBSPOT_ACCESS_TOKEN_DEV"
    )
    assert own.settings().resolved_token() == "pat-dev"
