"""The demo's living portal: ``make demo`` starts from a seeded HubSpot sandbox (companies and
contacts made before spokesync, without our external ids, some duplicated by domain, some
merged, some edited by people) with HubSpot's "create and associate companies with contacts"
setting ON, and shows what adoption did (docs/existing-portal.md).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from spokesync.canonical import canonical_domain
from spokesync.sample_data.generator import PARAMS_FILE
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings

# Seeded records and their manifest (what was planted), as the sandbox reports them.
PLANTED_KINDS = ("matching", "domain_variants", "merged", "duplicated_domains", "unmatched")
SANDBOX_ARGS = ["--auto-create-companies"]  # the harder case: HubSpot makes companies too


def fresh_start(settings: Settings, sandbox_db: Path) -> None:
    """Adoption shows on a first sync only: forget the previous demo's portal and state."""
    for path in (sandbox_db, settings.state_db):
        for p in (
            path,
            path.with_name(path.name + ".wal"),
            Path(f"{path}-wal"),
            Path(f"{path}-shm"),
        ):
            p.unlink(missing_ok=True)


def seed_spec(landing: Path) -> dict[str, Any]:
    """The seeded portal matches the sample warehouse (same seed, accounts and first day)."""
    params = json.loads((landing / PARAMS_FILE).read_text())
    return {"seed": params["seed"], "accounts": params["accounts"], "start": params["start"]}


def seed(sandbox: SandboxProcess, landing: Path) -> dict[str, Any]:
    manifest = sandbox.seed_portal(seed_spec(landing))
    co, ct = manifest["companies"], manifest["contacts"]
    print(
        f"seeded a living portal: {co['total']:,} companies ({len(co['matching']):,} matching an "
        f"account, {len(co['domain_variants']):,} with www./capitalised domains, "
        f"{len(co['duplicated_domains']):,} domains entered twice, {len(co['merged']):,} merged, "
        f"{len(co['edited']):,} edited by people, {len(co['unmatched']):,} unknown to the "
        f"warehouse); {ct['total']:,} contacts ({len(ct['merged']):,} merged, "
        f"{len(ct['edited']):,} edited); none carries a spokesync id; auto-create companies ON"
    )
    return manifest


def _emails(props: dict[str, Any]) -> Iterable[str]:
    for e in [props.get("email") or "", *(props.get("hs_additional_emails") or "").split(";")]:
        if e.strip():
            yield e.strip().lower()


def duplicates(sandbox: SandboxProcess, manifest: dict[str, Any]) -> dict[str, int]:
    """Companies sharing a normalised domain (beyond the pairs people made before spokesync)
    and contacts sharing an email (primary or additional), as the sandbox holds them."""
    companies = [r["properties"] for r in sandbox.export("companies")]
    domains = Counter(
        d for d in (canonical_domain(p.get("domain")) for p in companies if p.get("domain")) if d
    )
    planted = {p["domain"] for p in manifest["companies"]["duplicated_domains"]}
    owners: Counter[str] = Counter(
        e for r in sandbox.export("contacts") for e in set(_emails(r["properties"]))
    )
    ids = Counter(p["spokesync_account_id"] for p in companies if p.get("spokesync_account_id"))
    return {
        "companies": len(companies),
        "domains_planted_twice": sum(1 for d, n in domains.items() if n > 1 and d in planted),
        "companies_by_domain": sum(1 for d, n in domains.items() if n > 1 and d not in planted),
        "companies_by_account_id": sum(1 for n in ids.values() if n > 1),
        "contacts_by_email": sum(1 for n in owners.values() if n > 1),
    }


def summary_lines(
    dry_run: dict[str, object],
    first: dict[str, dict[str, object]],
    manifest: dict[str, Any],
    dupes: dict[str, int],
    second_writes: int,
) -> list[str]:
    """The adoption part of the demo summary."""
    lines = ["\nadoption into the living portal (first sync):"]
    lines.append(
        f"  {'object':<10} {'adopted':>8} {'by id key':>10} {'created':>8} {'ambiguous':>10} "
        f"{'dry run said':>16}"
    )
    for obj, m in first.items():
        planned = (
            f"{dry_run.get(f'{obj}_would_adopt', 0)}/{dry_run.get(f'{obj}_would_create', 0)}/"
            f"{dry_run.get(f'{obj}_ambiguous', 0)}"
        )
        # contacts are keyed by email: one whose primary email matches is updated in place by
        # the upsert itself (adoption rules only add the additional emails)
        keyed = int(dry_run.get(f"{obj}_would_update", 0) or 0) + int(
            dry_run.get(f"{obj}_unchanged", 0) or 0
        )
        lines.append(
            f"  {obj:<10} {int(m.get('records_adopted', 0) or 0):>8,} {keyed:>10,} "
            f"{int(m.get('records_new', 0) or 0):>8,} "
            f"{int(m.get('records_ambiguous', 0) or 0):>10,} {planned:>16}"
        )
    seeded = manifest["companies"]["total"]
    created = int(first.get("companies", {}).get("records_new", 0) or 0)
    extra = dupes["companies"] - seeded - created
    lines += [
        "  (dry run said: adopt/create/ambiguous as `hubspot_adopt_dry_run_job` predicted them "
        "before any write)",
        f"  duplicates made by the sync: {dupes['companies_by_domain']} companies by domain, "
        f"{dupes['companies_by_account_id']} by account id, {dupes['contacts_by_email']} "
        f"contacts by email; {dupes['domains_planted_twice']} domains people entered twice "
        "stay listed (`spokesync state ambiguous`) until merged or pinned; their accounts' "
        "contacts and deals wait unlinked meanwhile (the link-completeness KPI warns)",
        f"  companies in HubSpot: {dupes['companies']:,} = {seeded:,} seeded + {created:,} "
        f"created + {extra} made by HubSpot's auto-create setting",
        f"  second sync: {second_writes} record writes",
    ]
    return lines
