"""The seeded portal: records made before spokesync, overlapping the sample warehouse."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from spokesync.quality import FREE_MAIL_DOMAINS
from spokesync.sample_data.generator import _accounts_table, _users_table
from spokesync.sample_data.model import Company
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.sandbox.seed import PortalSeed
from tests.sandbox.conftest import Api, make_api

SPEC = {
    "accounts": 60,
    "companies": 0.7,
    "contacts": 0.6,
    "duplicates": 0.1,
    "merged": 0.1,
    "edited": 0.3,
    "domain_variants": 0.1,
    "other_companies": 3,
    "other_contacts": 4,
}


def _seed(api: Api, spec: dict[str, Any] = SPEC) -> dict[str, Any]:
    response = api.http.post("/__sandbox/seed-portal", json=spec)
    assert response.status_code == 200, response.text
    return response.json()


def _warehouse() -> tuple[dict[str, str], set[str]]:
    co = Company.build(7, 60, PortalSeed().start)
    accounts = _accounts_table(co, np.arange(co.n_accounts, dtype=np.int64)).to_pylist()
    users = _users_table(co, np.arange(co.n_users, dtype=np.int64)).to_pylist()
    return {a["domain"]: a["account_id"] for a in accounts}, {u["email"] for u in users}


def test_seeded_portal_overlaps_the_warehouse(api: Api) -> None:
    manifest = _seed(api)
    domains, emails = _warehouse()
    companies = api.export("companies")
    contacts = api.export("contacts")
    assert manifest["companies"]["total"] == len(companies)
    assert manifest["contacts"]["total"] == len(contacts)
    co, ct = manifest["companies"], manifest["contacts"]
    # every kind of record is present at this size and seed
    for key in (
        "matching",
        "duplicated_domains",
        "merged",
        "domain_variants",
        "edited",
        "unmatched",
    ):
        assert co[key], key
    for key in ("matching", "merged", "via_additional_email", "edited", "unmatched"):
        assert ct[key], key
    assert (len(co["unmatched"]), len(ct["unmatched"])) == (3, 4)
    by_id = {c["id"]: c["properties"] for c in companies}
    # nothing spokesync would write exists yet
    assert not any(k.startswith("spokesync_") for p in by_id.values() for k in p)
    for rid in co["matching"]:
        assert by_id[rid]["domain"] in domains
    for rid in co["domain_variants"]:
        d = by_id[rid]["domain"]
        assert d not in domains and (d.removeprefix("www.") in domains or d.lower() in domains)
    live_domains = Counter(p.get("domain") for p in by_id.values())
    for dup in co["duplicated_domains"]:
        assert live_domains[dup["domain"]] == 2 and set(dup["ids"]) <= set(by_id)
    for rid in co["unmatched"]:
        assert by_id[rid]["domain"] not in domains
    contact_props = {c["id"]: c["properties"] for c in contacts}
    for rid in ct["matching"]:
        assert contact_props[rid]["email"] in emails
    for entry in ct["via_additional_email"]:
        props = contact_props[entry["id"]]
        assert props["email"] not in emails
        assert entry["email"] in props["hs_additional_emails"].split(";")
    for rid in ct["unmatched"]:
        assert contact_props[rid]["email"] not in emails
    # associations: a contact with a company is linked to one of its account's domain
    linked = [c for c in contacts if c["associations"].get("companies")]
    assert len(linked) == ct["associations"]
    for c in linked:
        [target] = c["associations"]["companies"]
        assert target["types"] == [1, 279]
        company_domain = by_id[target["id"]]["domain"].lower().removeprefix("www.")
        email_domain = c["properties"]["email"].split("@")[1]
        # (some users signed up with a free-mail address: linked by their account, not domain)
        assert (
            email_domain == company_domain
            or email_domain in FREE_MAIL_DOMAINS
            or company_domain in (c["properties"].get("hs_additional_emails") or "")
        )


def test_seeded_merges_and_edits_behave_like_hubspot(api: Api) -> None:
    manifest = _seed(api)
    merged = manifest["companies"]["merged"][0]
    for old in merged["merged"]:
        status, body = api.get(f"/crm/v3/objects/companies/{old}?properties=hs_merged_object_ids")
        assert status == 200 and body["id"] == merged["id"]
        assert body["properties"]["hs_merged_object_ids"] == ";".join(sorted(merged["merged"]))
    edit = manifest["contacts"]["edited"][0]
    _, body = api.get(
        f"/crm/v3/objects/contacts/{edit['id']}?propertiesWithHistory={edit['property']}"
    )
    newest = body["propertiesWithHistory"][edit["property"]][0]
    assert (newest["value"], newest["sourceType"]) == (edit["value"], "CRM_UI")
    assert newest["timestamp"] < "2026-01-01"  # made before spokesync: before the warehouse start
    assert body["updatedAt"] < "2026-01-01"
    _, first = api.get(
        f"/crm/v3/objects/contacts/{manifest['contacts']['matching'][0]}?propertiesWithHistory=email"
    )
    assert first["propertiesWithHistory"]["email"][0]["sourceType"] in ("FORM", "IMPORT", "CRM_UI")


def test_seeding_is_deterministic_and_needs_an_empty_portal(tmp_path: Path) -> None:
    one, two = make_api(tmp_path / "a"), make_api(tmp_path / "b")
    assert _seed(one) == _seed(two)
    assert one.http.get("/__sandbox/export").json() == two.http.get("/__sandbox/export").json()
    response = one.http.post("/__sandbox/seed-portal", json=SPEC)
    assert response.status_code == 400 and "not empty" in response.text
    assert one.http.post("/__sandbox/seed-portal", json={"acounts": 3}).status_code == 400
    assert one.http.get("/__sandbox/seed-portal").json() == _seed(make_api(tmp_path / "c"))


def test_spec_parsing() -> None:
    assert PortalSeed.parse("default") == PortalSeed()
    assert PortalSeed.parse("accounts=10, merged=0.5").model_dump()["merged"] == 0.5
    assert PortalSeed.parse('{"accounts": 3}').accounts == 3
    with pytest.raises(ValueError, match="key=value"):
        PortalSeed.parse("accounts")


def test_cli_seeds_an_empty_portal_once(tmp_path: Path) -> None:
    spec = ",".join(f"{k}={v}" for k, v in SPEC.items())
    with SandboxProcess(tmp_path / "s.sqlite", extra_args=["--seed-portal", spec]) as sb:
        manifest = sb.seed_manifest()
        count = len(sb.export("companies"))
        assert count == manifest["companies"]["total"]
        sb.restart()  # the db is no longer empty: no second seeding
        assert len(sb.export("companies")) == count
