"""Full refresh streams HubSpot's pages into the store; a failed read changes nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import httpx
import pytest

from spokesync.changes import ConfirmedWrite
from spokesync.hubspot.client import HubSpotClient
from spokesync.hubspot.retry import RetryPolicy
from spokesync.mapping.loader import load_mapping
from spokesync.settings import Settings
from spokesync.state.store import StateStore
from spokesync.sync.runner import default_mapping_paths, refresh_snapshot

COMPANIES = load_mapping(next(p for p in default_mapping_paths() if p.stem == "companies"))


def _page(n: int, after: int | None) -> dict:
    body: dict = {
        "results": [
            {
                "id": str(1000 + i),
                "properties": {"spokesync_account_id": f"ACC-{i:06d}", "name": f"Company {i}"},
            }
            for i in range(n * 100, n * 100 + 100)
        ]
    }
    if after is not None:
        body["paging"] = {"next": {"after": str(after)}}
    return body


def _client(fail_on_page: int | None) -> HubSpotClient:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        n = calls["n"]
        calls["n"] += 1
        if n == fail_on_page:
            return httpx.Response(
                401,
                json={
                    "status": "error",
                    "message": "Authentication credentials not found.",
                    "correlationId": "c0ffee00-0000-0000-0000-000000000000",
                    "category": "INVALID_AUTHENTICATION",
                },
            )
        return httpx.Response(200, json=_page(n, n + 1 if n < 2 else None))

    return HubSpotClient(
        "http://hubspot.test",
        "pat-test",
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(max_attempts=1),
    )


def _settings(tmp_path: Path) -> Settings:
    return Settings.from_env(environ={}, home=tmp_path, env="test")


def _seed(settings: Settings) -> None:
    with StateStore(settings.state_db, [COMPANIES]) as store:
        store.record_confirmed(
            [
                ConfirmedWrite(
                    "companies", "ACC-999999", "1", {"name": "Old"}, dt.date(2026, 1, 1), True
                )
            ],
            "seed",
        )


def test_refresh_replaces_the_snapshot_with_every_page(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _seed(settings)

    async def run() -> list:
        client = _client(fail_on_page=None)
        try:
            return await refresh_snapshot(settings, [COMPANIES], client, "r1")
        finally:
            await client.aclose()

    (report,) = asyncio.run(run())
    assert report.records_read == 300
    with StateStore(settings.state_db) as store:
        values = store.snapshot_values("companies")
    assert len(values) == 300 and "ACC-999999" not in values
    assert values["ACC-000250"]["name"] == "Company 250"


def test_a_failed_read_leaves_the_snapshot_unchanged(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _seed(settings)
    with StateStore(settings.state_db) as store:
        before = store.snapshot_values("companies")

    async def run() -> list:
        client = _client(fail_on_page=2)
        try:
            return await refresh_snapshot(settings, [COMPANIES], client, "r2")
        finally:
            await client.aclose()

    with pytest.raises(Exception, match="401|INVALID_AUTHENTICATION|Authentication"):
        asyncio.run(run())
    with StateStore(settings.state_db) as store:
        assert store.snapshot_values("companies") == before
