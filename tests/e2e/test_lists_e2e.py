"""A static list kept equal to a SQL segment, against the sandbox server: the first run adds
exactly the segment, a rerun sends nothing, a source change adds and removes exactly the
records it should, a person's edit of the list is undone after the re-read, transient faults on
the membership writes (5xx, 429, dropped connections before and after applying, empty 2xx)
still end in the exact membership, a lost create answer makes one list, and shadow mode writes
nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from spokesync.exit_codes import ExitCode
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import SANDBOX_DEV_TOKEN, Settings
from spokesync.state.store import StateStore
from spokesync.sync.runner import DEFAULT_MAPPINGS_DIR, SyncOptions, run_sync
from tests.e2e.conftest import rewrite_master

pytestmark = pytest.mark.e2e

LIST_NAME = "spokesync: product-qualified accounts' admins"
# Written by hand from the fixture data (2026-01-01..03): with at least 5 users active in the
# last 7 days (the test's stricter threshold) the product-qualified accounts are ACC-000001,
# 003, 006, 009, 012, 014, 018, 020, 022, 025, 035, 037 and 039; their admins:
EXPECTED = {
    "nikola.lovelace.9@vertexhealth3.io",  # ACC-000003
    "omar.tanaka.20@falconsystems6.de",  # ACC-000006
    "mateo.ritchie.44@bluenetworks14.net",  # ACC-000014
    "frances.novak.47@bluenetworks14.net",  # ACC-000014
    "lena.ritchie.56@graniteanalytics18.de",  # ACC-000018
    "barbara.thompson.65@summitmotors20.co.uk",  # ACC-000020
    "ingrid.hopper.67@summitmotors20.co.uk",  # ACC-000020
    "ingrid.curie.75@lumenmedia22.io",  # ACC-000022
    "margaret.ritchie.81@cedarcapital25.co",  # ACC-000025
    "omar.backus.111@summitsystems35.co",  # ACC-000035
    "tim.lovelace.114@yahoo.com",  # ACC-000035
    "john.franklin.121@zenithventures37.com",  # ACC-000037
    "chloe.garcia.126@acmecloud39.co",  # ACC-000039
}
CONTACTS = DEFAULT_MAPPINGS_DIR / "contacts.yaml"


@pytest.fixture
def list_mapping(tmp_path: Path) -> Path:
    """The shipped mapping with a stricter 7-day threshold (the fixture's accounts are all
    active, so the shipped one holds every admin)."""
    text = (DEFAULT_MAPPINGS_DIR / "lists" / "pqa_admins.yaml").read_text()
    assert "pql_min_active_7d: 2" in text
    path = tmp_path / "pqa_admins.yaml"
    path.write_text(text.replace("pql_min_active_7d: 2", "pql_min_active_7d: 5"))
    return path


def options(list_mapping: Path, **kw: Any) -> SyncOptions:
    return SyncOptions(mapping_paths=[CONTACTS], list_mapping_paths=[list_mapping], **kw)


class Portal:
    """The sandbox's lists API, as a person (or a check) sees it."""

    def __init__(self, sandbox: SandboxProcess) -> None:
        self.http = httpx.Client(
            base_url=sandbox.base_url, headers={"Authorization": f"Bearer {SANDBOX_DEV_TOKEN}"}
        )
        self.sandbox = sandbox

    def lists_named(self, name: str) -> dict[str, Any] | None:
        quoted = httpx.URL(f"/x/{name}").raw_path.decode().removeprefix("/x/")
        r = self.http.get(f"/crm/v3/lists/object-type-id/0-1/name/{quoted}")
        return r.json()["list"] if r.status_code == 200 else None

    def member_ids(self, list_id: str) -> list[str]:
        out, after = [], None
        while True:
            params = {"limit": 250, **({"after": after} if after else {})}
            body = self.http.get(f"/crm/v3/lists/{list_id}/memberships", params=params).json()
            out += [r["recordId"] for r in body["results"]]
            after = (body.get("paging") or {}).get("next", {}).get("after")
            if not after:
                return out

    def emails(self) -> dict[str, str]:
        return {c["id"]: c["properties"]["email"] for c in self.sandbox.export("contacts")}

    def member_emails(self, list_id: str) -> set[str]:
        emails = self.emails()
        return {emails[i] for i in self.member_ids(list_id)}

    def contact_id(self, email: str) -> str:
        return next(i for i, e in self.emails().items() if e == email)

    def put(self, path: str, body: Any) -> dict[str, Any]:
        r = self.http.put(path, json=body)
        assert r.status_code == 200, r.text
        return r.json()


def ours(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """spokesync's requests (they carry X-Request-Id; the test's own checks do not)."""
    return [r for r in requests if r.get("request_id")]


def membership_writes(sandbox: SandboxProcess) -> list[dict[str, Any]]:
    return ours([r for r in sandbox.requests(method="PUT") if "/memberships" in r["path"]])


def membership_reads(sandbox: SandboxProcess) -> list[dict[str, Any]]:
    return ours(
        [
            r
            for r in sandbox.requests(method="GET")
            if r["path"].endswith("/memberships") and "/records/" not in r["path"]
        ]
    )


def list_creates(sandbox: SandboxProcess) -> list[dict[str, Any]]:
    return ours([r for r in sandbox.requests(method="POST") if r["path"].endswith("/lists")])


def test_first_run_adds_the_segment_and_a_rerun_sends_nothing(
    fixed_settings: Settings, sandbox: SandboxProcess, list_mapping: Path
) -> None:
    portal = Portal(sandbox)
    first = run_sync(fixed_settings, options(list_mapping))
    assert first.ok, first.to_text()
    (report,) = first.lists
    lst = portal.lists_named(LIST_NAME.upper())  # found without case
    assert lst is not None and lst["processingType"] == "MANUAL"
    assert report.list_id == lst["listId"] and report.list_created
    assert (report.desired, report.added, report.removed) == (13, 13, 0)
    assert (report.waiting_for_record, report.members_after) == (0, 13)
    assert portal.member_emails(lst["listId"]) == EXPECTED
    (write,) = membership_writes(sandbox)  # one call: only adds, ≤ 100
    assert write["path"].endswith(f"/lists/{lst['listId']}/memberships/add")
    assert sorted(write["body"]) == sorted(portal.contact_id(e) for e in EXPECTED)
    assert len(list_creates(sandbox)) == 1
    assert membership_reads(sandbox) == []  # a list made now is empty: nothing to read
    assert f"list pqa_admins (contacts, {LIST_NAME!r}" in first.to_text()

    sandbox.clear_requests()
    again = run_sync(fixed_settings, options(list_mapping))
    # 9, not 0: the sample warehouse's planted bad rows are quarantined (dropped before the push)
    assert again.ok and again.exit_code == ExitCode.DROPPED, again.to_text()
    (report,) = again.lists
    assert (report.added, report.removed, report.membership_calls) == (0, 0, 0)
    assert membership_writes(sandbox) == [] and membership_reads(sandbox) == []
    assert list_creates(sandbox) == []
    with StateStore(fixed_settings.state_db) as store:
        assert set(store.lists.members("pqa_admins").values()) == EXPECTED


def test_a_source_change_adds_and_removes_exactly_its_records(
    fixed_settings: Settings, sandbox: SandboxProcess, list_mapping: Path
) -> None:
    portal = Portal(sandbox)
    assert run_sync(fixed_settings, options(list_mapping)).ok
    # Omar Tanaka stops being an admin; a member of the same (qualified) account becomes one.
    home = fixed_settings.home
    rewrite_master(home, "users", "email", "omar.tanaka.20@falconsystems6.de", role="member")
    promoted = "ada.garcia.19@falconsystems6.de"
    rewrite_master(home, "users", "email", promoted, role="admin")
    sandbox.clear_requests()
    changed = run_sync(fixed_settings, options(list_mapping))
    assert changed.ok, changed.to_text()
    (report,) = changed.lists
    assert (report.added, report.removed, report.membership_calls) == (1, 1, 1)
    (write,) = membership_writes(sandbox)
    assert write["path"].endswith("/memberships/add-and-remove")
    assert write["body"] == {
        "recordIdsToAdd": [portal.contact_id(promoted)],
        "recordIdsToRemove": [portal.contact_id("omar.tanaka.20@falconsystems6.de")],
    }
    lst = portal.lists_named(LIST_NAME)
    assert portal.member_emails(lst["listId"]) == (
        EXPECTED - {"omar.tanaka.20@falconsystems6.de"}
    ) | {promoted}


def test_a_persons_edit_of_the_list_is_undone_after_the_reread(
    fixed_settings: Settings, sandbox: SandboxProcess, list_mapping: Path
) -> None:
    portal = Portal(sandbox)
    assert run_sync(fixed_settings, options(list_mapping)).ok
    lst = portal.lists_named(LIST_NAME)
    base = f"/crm/v3/lists/{lst['listId']}/memberships"
    # In HubSpot, a person takes Ingrid Curie off the list and puts a non-admin on it.
    curie = portal.contact_id("ingrid.curie.75@lumenmedia22.io")
    outsider = portal.contact_id("ada.garcia.19@falconsystems6.de")
    assert portal.put(f"{base}/remove", [curie])["recordIdsRemoved"] == [curie]
    assert portal.put(f"{base}/add", [outsider])["recordsIdsAdded"] == [outsider]
    # one swap leaves the size unchanged: only the periodic re-read (here a full refresh) sees it
    sandbox.clear_requests()
    quiet = run_sync(fixed_settings, options(list_mapping, refresh="incremental"))
    assert quiet.lists[0].reread is False and membership_writes(sandbox) == []
    sandbox.clear_requests()
    full = run_sync(fixed_settings, options(list_mapping, refresh="full"))
    assert full.ok, full.to_text()
    (report,) = full.lists
    assert report.reread and (report.manual_added, report.manual_removed) == (1, 1)
    assert (report.added, report.removed) == (1, 1)
    assert len(membership_reads(sandbox)) == 1  # 13 members: one page of 250
    (write,) = membership_writes(sandbox)
    assert write["body"] == {"recordIdsToAdd": [curie], "recordIdsToRemove": [outsider]}
    assert portal.member_emails(lst["listId"]) == EXPECTED
    # A removal alone changes HubSpot's size: the next run re-reads without being asked.
    portal.put(f"{base}/remove", [curie])
    sandbox.clear_requests()
    healed = run_sync(fixed_settings, options(list_mapping))
    assert healed.lists[0].reread and healed.lists[0].added == 1
    assert portal.member_emails(lst["listId"]) == EXPECTED


@pytest.mark.parametrize(
    "faults",
    [
        [503, 502],
        [429],
        ["drop"],
        ["drop_after_apply"],
        ["empty", "empty"],
    ],
    ids=["5xx", "429", "drop", "drop-after-apply", "empty-2xx"],
)
def test_faults_on_membership_writes_end_in_the_exact_membership(
    fixed_settings: Settings, sandbox: SandboxProcess, list_mapping: Path, faults: list[Any]
) -> None:
    portal = Portal(sandbox)
    sandbox.set_faults(next=faults, route_pattern=r"/memberships/")
    first = run_sync(fixed_settings, options(list_mapping))
    assert first.ok, first.to_text()
    (report,) = first.lists
    assert (report.added, report.unconfirmed, report.members_after) == (13, 0, 13)
    lst = portal.lists_named(LIST_NAME)
    assert portal.member_emails(lst["listId"]) == EXPECTED
    writes = membership_writes(sandbox)
    assert len(writes) == 1 + len(faults)  # each fault costs exactly one more send
    assert [w["fault"] for w in writes] == [*faults, None]
    sandbox.clear_requests()
    again = run_sync(fixed_settings, options(list_mapping))
    assert again.lists[0].membership_calls == 0 and membership_writes(sandbox) == []


def test_an_empty_2xx_past_the_resends_is_unconfirmed_and_sent_next_run(
    fixed_settings: Settings, sandbox: SandboxProcess, list_mapping: Path
) -> None:
    portal = Portal(sandbox)
    sandbox.set_faults(next=["empty", "empty", "empty"], route_pattern=r"/memberships/")
    first = run_sync(fixed_settings, options(list_mapping))
    (report,) = first.lists
    assert (report.added, report.unconfirmed, report.members_after) == (0, 13, 0)
    assert first.exit_code == ExitCode.DEAD_LETTERED
    again = run_sync(fixed_settings, options(list_mapping))
    assert again.lists[0].added == 13 and again.ok
    assert portal.member_emails(portal.lists_named(LIST_NAME)["listId"]) == EXPECTED


def test_a_lost_create_answer_makes_one_list(
    fixed_settings: Settings, sandbox: SandboxProcess, list_mapping: Path
) -> None:
    portal = Portal(sandbox)
    sandbox.set_faults(next=["drop_after_apply"], route_pattern=r"/crm/v3/lists$")
    first = run_sync(fixed_settings, options(list_mapping))
    assert first.ok, first.to_text()
    assert len(list_creates(sandbox)) == 1  # never sent twice: read back by name
    lst = portal.lists_named(LIST_NAME)
    assert first.lists[0].list_id == lst["listId"] == "1"
    assert portal.member_emails(lst["listId"]) == EXPECTED
    assert portal.http.get("/crm/v3/lists/2").status_code == 404


def test_shadow_mode_plans_and_writes_nothing(
    fixed_settings: Settings, sandbox: SandboxProcess, list_mapping: Path
) -> None:
    assert run_sync(fixed_settings, options(list_mapping)).ok
    rewrite_master(
        fixed_settings.home, "users", "email", "omar.tanaka.20@falconsystems6.de", role="member"
    )
    sandbox.clear_requests()
    shadow = run_sync(fixed_settings, options(list_mapping, shadow=True))
    (report,) = shadow.lists
    assert report.shadow and (report.planned_add, report.planned_remove) == (0, 1)
    assert report.added == report.removed == 0
    assert [
        r for r in sandbox.requests() if r["method"] in ("POST", "PUT", "PATCH", "DELETE")
    ] == []


def test_a_dynamic_list_of_that_name_is_refused_before_any_membership_call(
    fixed_settings: Settings, sandbox: SandboxProcess, list_mapping: Path
) -> None:
    portal = Portal(sandbox)
    r = portal.http.post(
        "/crm/v3/lists",
        json={"name": LIST_NAME, "objectTypeId": "0-1", "processingType": "DYNAMIC"},
    )
    assert r.status_code == 200
    sandbox.clear_requests()
    summary = run_sync(fixed_settings, options(list_mapping))
    (report,) = summary.lists
    assert report.failure is not None and report.failure.code == ExitCode.USAGE
    assert "DYNAMIC, not MANUAL" in report.failure.message
    assert summary.exit_code == ExitCode.USAGE
    assert membership_writes(sandbox) == [] and list_creates(sandbox) == []
