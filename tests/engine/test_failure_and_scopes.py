"""Exit codes, the one error-to-message mapping, and the scope table (code and docs agree)."""

from __future__ import annotations

import errno
import re
from pathlib import Path

from spokesync.desired import reference_tables_used
from spokesync.exit_codes import ExitCode, worst
from spokesync.failure import explain
from spokesync.hubspot.errors import (
    ApiError,
    DailyLimitReached,
    HubSpotAuthError,
    RetriesExhausted,
    parse_error,
)
from spokesync.hubspot.scopes import FEATURES, feature_for, missing_scopes_message
from spokesync.mapping.loader import load_mappings
from spokesync.state.connection import StateStoreBusy
from spokesync.sync.runner import DEFAULT_MAPPINGS_DIR

DOCS = Path(__file__).resolve().parents[2] / "docs"

# HubSpot's documented 403 body (error-handling guide), for deals.
MISSING_SCOPES = {
    "status": "error",
    "message": "This app hasn't been granted all required scopes to make this call.",
    "correlationId": "c0ffee00-0000-4000-8000-000000000001",
    "errors": [
        {
            "message": "One or more of the following scopes are required.",
            "context": {"requiredGranularScopes": ["crm.schemas.deals.write"]},
        }
    ],
    "category": "MISSING_SCOPES",
}


def test_worst_orders_outcomes_by_severity() -> None:
    assert worst([]) == ExitCode.OK
    assert worst([ExitCode.OK, ExitCode.DEAD_LETTERED]) == ExitCode.DEAD_LETTERED
    assert worst([ExitCode.DEAD_LETTERED, ExitCode.DAILY_BUDGET]) == ExitCode.DAILY_BUDGET
    assert worst([ExitCode.DAILY_BUDGET, ExitCode.AUTH, ExitCode.BUSY]) == ExitCode.AUTH
    assert worst([3, 0]) == 3


def test_every_exit_code_is_distinct_and_documented_in_the_runbook() -> None:
    assert len({int(c) for c in ExitCode}) == len(ExitCode)
    text = (DOCS / "runbooks.md").read_text()
    table = dict(re.findall(r"^\| (\d) \| (\w+) \|", text, re.M))
    assert table == {str(int(c)): c.name.lower() for c in ExitCode}


def test_missing_scopes_message_names_feature_object_and_scopes() -> None:
    error = parse_error(MISSING_SCOPES, 403)
    message = missing_scopes_message("POST", "/crm/properties/2026-03/deals", error)
    assert message.startswith(
        "HubSpot refused to read and create the mapping's custom properties and groups for "
        "deals (403 MISSING_SCOPES): the token lacks one of the scopes HubSpot names: "
        "crm.schemas.deals.write; spokesync's ensure-properties needs crm.schemas.deals.read, "
        "crm.schemas.deals.write."
    )
    assert "docs/security.md" in message and "c0ffee00-0000-4000-8000-000000000001" in message


def test_feature_of_each_write_route() -> None:
    cases = {
        ("POST", "/crm/objects/2026-03/companies/batch/upsert"): ("push", "companies"),
        ("GET", "/crm/objects/2026-03/tickets"): ("refresh", "tickets"),
        ("GET", "/crm/pipelines/2026-03/deals"): ("reference", None),
        ("GET", "/crm/v3/owners"): ("reference", None),
        ("PUT", "/crm/v3/lists/7/memberships/add-and-remove"): ("lists", None),
        ("POST", "/crm/lists/2026-03"): ("lists", None),
        ("POST", "/crm/properties/2026-03/contacts/groups"): ("ensure-properties", "contacts"),
        ("POST", "/crm/associations/2026-03/deals/companies/batch/create"): (
            "associations",
            "deals",
        ),
        ("POST", "/crm/v4/associations/contacts/companies/batch/labels/archive"): (
            "associations",
            "contacts",
        ),
        # A custom object by its type id, in v3 and date-versioned paths alike.
        ("POST", "/crm/v3/objects/2-123/batch/upsert"): ("push", "2-123"),
        ("POST", "/crm/objects/2026-03/2-123/batch/upsert"): ("push", "2-123"),
        ("POST", "/crm/v3/objects/2-123/search"): ("refresh", "2-123"),
        ("GET", "/crm/v3/objects/2-123/456"): ("refresh", "2-123"),
        ("POST", "/crm/v3/properties/2-123/batch/create"): ("ensure-properties", "2-123"),
        ("GET", "/crm/properties/2026-03/2-123"): ("ensure-properties", "2-123"),
        ("POST", "/crm/v4/associations/2-123/0-2/batch/create"): ("associations", "2-123"),
        ("GET", "/crm/associations/2026-03/2-123/companies/labels"): ("associations", "2-123"),
        ("GET", "/crm/v4/objects/2-123/456/associations/tasks"): ("refresh", "2-123"),
        ("POST", "/crm-object-schemas/v3/schemas/2-123/associations"): (
            "custom-object schema",
            "2-123",
        ),
    }
    for (method, path), (feature, object_type) in cases.items():
        f, ot = feature_for(method, path)
        assert (f.name, ot) == (feature, object_type), path


def test_security_doc_lists_exactly_the_scopes_the_shipped_mappings_need() -> None:
    mappings = load_mappings(sorted(DEFAULT_MAPPINGS_DIR.glob("*.yaml")))
    needed = set()
    for m in mappings:
        targets = [a.to_object_type for a in m.associations]
        for feature in FEATURES.values():
            if feature.name == "lists":  # the shipped list mappings (mappings/lists/)
                if sorted((DEFAULT_MAPPINGS_DIR / "lists").glob("*.yaml")):
                    needed |= set(feature.scopes(m.object_type))
            elif feature.name != "reference" or reference_tables_used(m):
                needed |= set(feature.scopes(m.object_type, targets))
    text = (DOCS / "security.md").read_text()
    block = text.split("```")[1]  # the shipped mappings' full list
    assert set(block.split()) == needed
    assert "tickets" in needed and "crm.objects.tickets.write" not in needed


def test_explain_maps_the_error_tree_to_codes() -> None:
    auth401 = HubSpotAuthError("refused", ApiError(401, "INVALID_AUTHENTICATION", "bad"))
    failure = explain(auth401, env="prod")
    assert (failure.code, failure.status) == (ExitCode.AUTH, 401)
    assert "Set HUBSPOT_ACCESS_TOKEN_PROD to a valid" in failure.message  # prod: its own only
    assert explain(HubSpotAuthError("x", parse_error(MISSING_SCOPES, 403))).code == ExitCode.AUTH
    assert explain(DailyLimitReached("spent")).code == ExitCode.DAILY_BUDGET
    exhausted = RetriesExhausted("5xx", attempts=6, status_code=503)
    assert explain(exhausted).code == ExitCode.FAILED and explain(exhausted).expected
    assert explain(StateStoreBusy("locked")).code == ExitCode.BUSY
    full = OSError(errno.ENOSPC, "No space left on device", "/data/state/prod.duckdb")
    assert explain(full).message == (
        "cannot write /data/state/prod.duckdb: the disk is full. Free space on that disk, or set "
        "SPOKESYNC_HOME to a folder on another disk, then run again"
    )
    readonly = OSError(errno.EROFS, "Read-only file system", "/data")
    assert explain(readonly).code == ExitCode.STORAGE
    bug = explain(KeyError("x"))
    assert (bug.code, bug.expected) == (ExitCode.FAILED, False)
