"""Fixtures: an in-process sandbox (fast contract tests) and a real one started by the launcher."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spokesync.sandbox.app import SandboxApp, SandboxConfig, create_app
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import SANDBOX_DEV_TOKEN

AUTH = {"Authorization": f"Bearer {SANDBOX_DEV_TOKEN}"}


class Api:
    """A TestClient that sends the development token and returns (status, json)."""

    def __init__(self, app: SandboxApp) -> None:
        with warnings.catch_warnings():
            # Starlette 1.10 warns that its TestClient will move to httpx2; behaviour unchanged.
            warnings.simplefilter("ignore")
            from starlette.testclient import TestClient

        self.app = app
        self.http = TestClient(app, raise_server_exceptions=True)

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        headers = {**AUTH, **kwargs.pop("headers", {})}
        response = self.http.request(method, path, json=body, headers=headers, **kwargs)
        self.last = response
        return response.status_code, (response.json() if response.content else None)

    def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return self.call("POST", path, body, **kw)

    def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return self.call("GET", path, **kw)

    def export(self, object_type: str) -> list[dict[str, Any]]:
        return self.http.get("/__sandbox/export", params={"objectType": object_type}).json()[
            object_type
        ]


def make_api(tmp_path: Path, **config: Any) -> Api:
    config.setdefault("seed", 7)
    return Api(create_app(SandboxConfig(db_path=tmp_path / "sandbox.sqlite", **config)))


@pytest.fixture
def api(tmp_path: Path) -> Api:
    return make_api(tmp_path)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxProcess]:
    """A real ``spokesync sandbox`` process on a free port, stopped after the test."""
    with SandboxProcess(tmp_path / "sandbox.sqlite") as process:
        yield process
