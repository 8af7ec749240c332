"""Faults on every write route of a real sync against the sandbox (not only batch/upsert).

Each test ends in the exact final state (values and associations), with no duplicates, and a
following run that writes nothing.
"""

from __future__ import annotations

import duckdb
import pytest

from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.sync.runner import latest_partition, run_sync
from tests.e2e.test_sync_e2e import (
    BY_TYPE,
    assert_associated_to_their_company,
    assert_sandbox_matches,
    desired_state,
)

pytestmark = pytest.mark.e2e

WRITE_SUFFIXES = ("/batch/upsert", "/batch/create", "/batch/labels/archive")


def write_requests(sandbox: SandboxProcess) -> list[dict]:
    """Every write the sandbox saw: object and association batches, property metadata (not the
    reads sent as POST: search — the incremental refresh — and batch reads)."""
    return [
        r
        for r in sandbox.requests()
        if r["method"] in ("POST", "PATCH", "PUT", "DELETE")
        and not r["path"].startswith("/__")
        and not r["path"].endswith(("/search", "/batch/read"))
    ]


def recorded_links(settings: Settings) -> set[tuple[str, str, str, str]]:
    """The association snapshot: links spokesync holds as confirmed."""
    with duckdb.connect(str(settings.state_db), read_only=True) as con:
        rows = con.execute(
            "SELECT from_type, from_external_id, to_type, to_external_id FROM association_snapshot"
        ).fetchall()
    return {tuple(r) for r in rows}  # type: ignore[misc]


def sandbox_links(sandbox: SandboxProcess) -> set[tuple[str, str, str, str]]:
    """The links HubSpot (the sandbox) really holds between mapped records, by external ids."""
    exported = sandbox.export()
    key_of = {
        (t, r["id"]): r["properties"].get(BY_TYPE[t].id.property)
        for t in BY_TYPE
        for r in exported.get(t, [])
    }
    out = set()
    for from_type in BY_TYPE:
        for record in exported.get(from_type, []):
            for to_type, links in record["associations"].items():
                for link in links:
                    if (to_type, link["id"]) in key_of:
                        from_key = key_of[(from_type, record["id"])]
                        out.add((from_type, from_key, to_type, key_of[(to_type, link["id"])]))
    return out


def test_empty_2xx_on_association_calls_records_only_confirmed_links_then_repairs(
    settings: Settings, sandbox: SandboxProcess
) -> None:
    as_of = latest_partition(settings.warehouse_dir)
    # The first association call (contacts→companies) is answered 200 with neither results
    # nor errors on all three sends; after that half the association calls are. (Link creates
    # only: the next mapping's label setup runs during the contacts push and must not take
    # the first faults.)
    sandbox.set_faults(
        seed=3,
        route_pattern="/associations/.*/batch/create",
        writes_only=True,
        empty_2xx_probability=0.5,
        next=["empty", "empty", "empty"],
    )
    first = run_sync(settings)
    injected = sandbox.stats()["faults_injected"]
    assert injected["empty"] >= 3, injected
    by_type = {o.object_type: o for o in first.objects}
    (contacts_links,) = by_type["contacts"].associations
    assert contacts_links.pairs_ok == 0 and contacts_links.unconfirmed > 0
    recorded = recorded_links(settings)
    assert not [r for r in recorded if r[0] == "contacts"]
    # Nothing is held as confirmed that HubSpot does not hold.
    assert recorded <= sandbox_links(sandbox)

    sandbox.set_faults()
    run_sync(settings)
    assert recorded_links(settings) <= sandbox_links(sandbox)
    wanted = {(m.object_type, a.to_object_type) for m in BY_TYPE.values() for a in m.associations}
    assert {r for r in sandbox_links(sandbox) if r[:3:2] in wanted} == recorded_links(settings)
    assert_sandbox_matches(sandbox, desired_state(settings, as_of))
    assert_associated_to_their_company(sandbox)
    sandbox.clear_requests()
    third = run_sync(settings)
    assert write_requests(sandbox) == []
    assert all(o.records_changed == 0 for o in third.objects)


@pytest.mark.parametrize("fault", ["drop_after_apply", "empty"])
def test_lost_or_empty_answers_to_property_and_group_creates_do_not_stop_the_sync(
    settings: Settings, sandbox: SandboxProcess, fault: str
) -> None:
    as_of = latest_partition(settings.warehouse_dir)
    # The first group create is hit twice in a row, then a fifth of property-metadata writes.
    knob = {"drop_after_apply": "drop_after_apply_probability", "empty": "empty_2xx_probability"}
    sandbox.set_faults(
        seed=2,
        route_pattern="/crm/properties/",
        writes_only=True,
        next=[fault, fault],
        **{knob[fault]: 0.2},
    )
    summary = run_sync(settings)
    assert sandbox.stats()["faults_injected"][fault] >= 4
    assert summary.ok, [o.error for o in summary.objects]
    sandbox.set_faults()
    assert_sandbox_matches(sandbox, desired_state(settings, as_of))
    assert_associated_to_their_company(sandbox)
    if fault == "drop_after_apply":  # the retried create met HubSpot's 409 at least once
        statuses = [r["status"] for r in sandbox.requests() if "/crm/properties/" in r["path"]]
        assert 409 in statuses
    sandbox.clear_requests()
    run_sync(settings)
    assert write_requests(sandbox) == []
