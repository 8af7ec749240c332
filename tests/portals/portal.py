"""Building a portal "made before spokesync" in the sandbox, through the admin edit API (as a
person in the CRM UI would) and the public merge endpoint."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx

from spokesync.sandbox.launcher import SandboxProcess

WRITE_PATHS = ("/batch/upsert", "/batch/update", "/batch/create", "/batch/archive")


def person_creates(sandbox: SandboxProcess, object_type: str, **properties: str) -> str:
    return str(sandbox.edit_as_person(object_type, None, properties)["id"])


def person_edits(sandbox: SandboxProcess, object_type: str, record_id: str, **props: str) -> None:
    sandbox.edit_as_person(object_type, record_id, props)


def merge(sandbox: SandboxProcess, object_type: str, primary: str, secondary: str) -> str:
    """``POST /crm/v3/objects/{type}/merge``; returns the survivor's (new) id."""
    response = httpx.post(
        f"{sandbox.base_url}/crm/v3/objects/{object_type}/merge",
        json={"primaryObjectId": primary, "objectIdToMerge": secondary},
        headers={"Authorization": f"Bearer {sandbox.token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def by_id(sandbox: SandboxProcess, object_type: str) -> dict[str, dict[str, Any]]:
    return {r["id"]: r["properties"] for r in sandbox.export(object_type)}


def duplicates(sandbox: SandboxProcess, object_type: str, prop: str) -> dict[str, int]:
    """Values of ``prop`` (lowercased) held by more than one record."""
    values = [str(p.get(prop)).lower() for p in by_id(sandbox, object_type).values() if p.get(prop)]
    return {v: n for v, n in Counter(values).items() if n > 1}


def write_calls(sandbox: SandboxProcess, since_seq: int | None = None) -> Counter[str]:
    """Record and association writes by route, e.g. ``{"companies /batch/update": 1}``."""
    out: Counter[str] = Counter()
    for r in sandbox.requests(method="POST", since_seq=since_seq):
        path = r["path"]
        if "/associations/" in path:
            out["associations"] += 1
            continue
        for suffix in WRITE_PATHS:
            if path.endswith(suffix):
                out[f"{path.split('/')[4]} {suffix}"] += 1
    return out


def last_seq(sandbox: SandboxProcess) -> int:
    log = sandbox.requests()
    return max((int(r.get("seq", 0)) for r in log), default=0)
