"""Start the sandbox as a real subprocess on a free loopback port (for tests, demos, benches).

with SandboxProcess(tmp_path / "sandbox.sqlite") as sandbox:
    client = HubSpotClient(base_url=sandbox.base_url, token=sandbox.token)
    ...
    assert sandbox.stats()["records"]["created"] == 3
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from spokesync.settings import SANDBOX_DEV_TOKEN

START_TIMEOUT_S = 60.0  # imports alone took over 20 s on a shared 2-core machine at load 27


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SandboxError(RuntimeError):
    """The sandbox process did not start or an admin call failed."""


class SandboxProcess:
    """``python -m spokesync.cli sandbox`` as a context manager, plus the admin API over HTTP."""

    token: str = SANDBOX_DEV_TOKEN

    def __init__(
        self,
        db_path: Path,
        *,
        port: int | None = None,
        rate_limit: int = 190,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.db_path = Path(db_path)
        self.port = port or free_port()
        self.rate_limit = rate_limit
        self.extra_args = list(extra_args)
        self.env = dict(env) if env is not None else None
        self.base_url = f"http://127.0.0.1:{self.port}"
        # the server's stdout/stderr go to a file: a pipe nobody reads would block it when full
        self.log_path = self.db_path.with_name(self.db_path.name + f".{self.port}.log")
        self.process: subprocess.Popen[bytes] | None = None
        self._admin = httpx.Client(base_url=self.base_url, timeout=10.0)
        # the fault and runtime settings it started with (see restore())
        self._started_with: tuple[dict[str, Any], dict[str, Any]] | None = None

    # ------------------------------------------------------------ lifecycle
    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "spokesync.cli",
            "sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--db",
            str(self.db_path),
            "--rate-limit",
            str(self.rate_limit),
            *self.extra_args,
        ]

    def start(self) -> None:
        env = {**os.environ, **(self.env or {})}
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise SandboxError(f"sandbox exited with {code}: {self.log_tail()}")
            try:
                if self._admin.get("/").status_code == 200:
                    self._started_with = (self.faults(), self._call("GET", "/config"))
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise SandboxError(
            f"sandbox did not answer GET / on {self.base_url} within {START_TIMEOUT_S}s"
        )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the server's output (errors, tracebacks)."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: no clean shutdown (for crash/persistence tests)."""
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> SandboxProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self._admin.close()

    # ------------------------------------------------------------ admin API
    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._admin.request(method, f"/__sandbox{path}", **kwargs)
        if response.status_code >= 400:
            raise SandboxError(
                f"{method} /__sandbox{path} → {response.status_code}: {response.text}"
            )
        return response.json()

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/stats")

    def requests(self, **filters: Any) -> list[dict[str, Any]]:
        """The request log; filters: method, path, path_contains, route, status, request_id,
        since_seq, limit."""
        params = {k: str(v) for k, v in filters.items() if v is not None}
        return self._call("GET", "/requests", params=params)["results"]

    def clear_requests(self) -> None:
        self._call("DELETE", "/requests")

    def reset(self) -> None:
        """An empty portal, fresh counters and request log; faults and settings stay."""
        self._call("POST", "/reset")

    def restore(self) -> None:
        """As just started on an empty database: :meth:`reset`, and the faults and runtime
        settings of the start (so one server can serve test after test)."""
        assert self._started_with is not None, "restore() needs a started sandbox"
        faults, config = self._started_with
        self.reset()
        self._call("PUT", "/faults", json=faults)
        self._call("PUT", "/config", json=config)

    def set_faults(self, **faults: Any) -> None:
        """Replace the fault configuration (see docs/sandbox.md); no arguments clears it."""
        self._call("PUT", "/faults", json=faults)

    def faults(self) -> dict[str, Any]:
        return self._call("GET", "/faults")

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change rate_limit, daily_limit, search_rate_limit, retry_after, latency_ms,
        search_lag_ms, shuffle_results, email_upsert_partial or auto_create_companies at runtime."""
        return self._call("PATCH", "/config", json=changes)

    def export(self, object_type: str | None = None, *, archived: bool = False) -> Any:
        """All records with properties (and associations): ``{type: [...]}``, or the list for
        ``object_type``."""
        params = {"archived": str(archived).lower()}
        if object_type:
            params["objectType"] = object_type
        data = self._call("GET", "/export", params=params)
        if object_type:
            return next(iter(data.values()))
        return data

    def edit_as_person(
        self,
        object_type: str,
        record_id: str | None,
        properties: dict[str, Any],
        *,
        source_type: str = "CRM_UI",
        user_id: int | None = None,
        timestamp: str | None = None,
    ) -> dict[str, Any]:
        """Write as a person in the CRM UI (history ``sourceType: CRM_UI``) or another source;
        ``record_id`` None creates. Returns the record with every stored property."""
        body: dict[str, Any] = {
            "objectType": object_type,
            "id": record_id,
            "properties": properties,
            "sourceType": source_type,
        }
        if user_id is not None:
            body["userId"] = user_id
        if timestamp is not None:
            body["timestamp"] = timestamp
        return self._call("POST", "/edit", json=body)

    def seed_portal(self, spec: str | dict[str, Any] = "default") -> dict[str, Any]:
        """Fill the (empty) portal with records made before spokesync; returns the manifest of
        what was planted (docs/sandbox.md, "A seeded portal")."""
        body = {"spec": spec} if isinstance(spec, str) else spec
        return self._call("POST", "/seed-portal", json=body)

    def bulk_load(
        self,
        object_type: str,
        path: Path,
        *,
        source_type: str = "INTEGRATION",
        associate: dict[str, Any] | None = None,
        ends_at: int | None = None,
    ) -> dict[str, Any]:
        """Load every row of a Parquet or JSON-lines file as a new record (validated like
        ``batch/create``, with history; docs/sandbox.md, "Bulk loading"). ``associate``:
        ``{"toObjectType", "column", "toProperty", "labels"}``; ``ends_at``: epoch ms of the
        last write time (Parquet only; default now). Waits as long as it takes."""
        body: dict[str, Any] = {
            "objectType": object_type,
            "path": str(Path(path).resolve()),
            "sourceType": source_type,
        }
        if associate is not None:
            body["associate"] = associate
        if ends_at is not None:
            body["endsAt"] = ends_at
        return self._call("POST", "/bulk-load", json=body, timeout=None)

    def seed_manifest(self) -> dict[str, Any]:
        """The manifest of the last seeding ({} if the portal was never seeded)."""
        return self._call("GET", "/seed-portal")
