"""``spokesync webhooks serve`` as a real subprocess on a free loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from spokesync.sandbox.launcher import free_port
from tests.e2e.conftest import home, warehouse_template  # noqa: F401 - shared fixtures

SECRET = "app-client-secret-e2e"


class WebhookServer:
    def __init__(self, spokesync_home: Path, secret: str = SECRET) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/webhooks/hubspot"
        self.inbox = spokesync_home / "webhooks" / "test.sqlite"
        self.log = spokesync_home / f"webhooks.{self.port}.log"
        env = {**os.environ, "SPOKESYNC_HOME": str(spokesync_home), "SPOKESYNC_ENV": "test"}
        env["HUBSPOT_CLIENT_SECRET_TEST"] = secret
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "spokesync.cli",
                    "webhooks",
                    "serve",
                    "--port",
                    str(self.port),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"webhook server did not start: {self.log.read_text()}")

    def health(self) -> dict[str, object]:
        return httpx.get(f"http://127.0.0.1:{self.port}/healthz").json()

    def wait_for(self, key: str, value: int, timeout: float = 10.0) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = self.health()
            if health.get(key) == value:
                return health
            time.sleep(0.05)
        raise AssertionError(f"{key} never reached {value}: {self.health()}")

    def wait_quiet(self, quiet_s: float = 0.5, timeout: float = 20.0) -> int:
        """Wait until no new event arrived for ``quiet_s``; returns the event count."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            n = int(self.health()["events"])  # type: ignore[arg-type]
            if n != last:
                last, since = n, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return n
            time.sleep(0.05)
        raise AssertionError(f"events still arriving after {timeout}s: {last}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def webhook_server(tmp_path: Path) -> Iterator[WebhookServer]:
    server = WebhookServer(tmp_path)
    try:
        yield server
    finally:
        server.stop()
