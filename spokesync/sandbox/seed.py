"""A seeded portal: the records a five-year-old HubSpot portal holds before spokesync arrives.

Built from the sample warehouse's own master data (:class:`spokesync.sample_data.model.Company`
with the same ``seed`` / ``accounts`` / ``start`` as ``spokesync sample-data``), so the portal
overlaps the warehouse the way a real one does: companies that match an account by domain (some
typed as ``www.Domain``, some entered twice, some merged by a person), contacts that match a user
by email (some only through ``hs_additional_emails`` after a merge), companies and contacts the
warehouse does not know, contact→company associations, and people's later edits in the CRM UI —
all without ``spokesync_*`` properties or external ids, every value with its history source
(``IMPORT``, ``FORM``, ``CRM_UI``, ``INTEGRATION`` of another app). Deterministic by spec.

Spec: ``key=value`` pairs (``accounts=2000,companies=0.6``), a JSON object, or ``@file.json``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from spokesync.sample_data.generator import _accounts_table, _users_table
from spokesync.sample_data.model import FIRST_NAMES, LAST_NAMES, WORDS_A, WORDS_B, Company
from spokesync.sandbox.catalog import OWNERS
from spokesync.sandbox.history import WriteSource
from spokesync.sandbox.merges import MergeService
from spokesync.sandbox.objects import ObjectService
from spokesync.sandbox.store import Record
from spokesync.sandbox.validation import format_datetime

MANIFEST_KEY = "seed_portal_manifest"
US = 1_000_000
DAY_US = 86_400 * US
FREEMAIL = ("gmail.com", "outlook.com", "yahoo.com", "hotmail.com", "icloud.com")
OTHER_APP = WriteSource("INTEGRATION", "904411")  # another app that wrote before spokesync
STAGES = ("lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer")
COMPANY_EDITS = ("phone", "numberofemployees", "lifecyclestage", "name")
CONTACT_EDITS = ("jobtitle", "phone", "lifecyclestage", "firstname")


class PortalSeed(BaseModel):
    """What the portal holds; fractions are of the warehouse's accounts / users."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(7, description="the sample warehouse's seed (spokesync sample-data --seed)")
    accounts: int = Field(2000, ge=1, description="the warehouse's account count (--accounts)")
    start: dt.date = Field(dt.date(2026, 1, 1), description="the warehouse's first day (--start)")
    companies: float = Field(0.6, ge=0, le=1, description="accounts already in HubSpot")
    contacts: float = Field(0.5, ge=0, le=1, description="users already in HubSpot")
    duplicates: float = Field(0.03, ge=0, le=1, description="companies entered twice (one domain)")
    merged: float = Field(0.02, ge=0, le=1, description="records a person merged with a duplicate")
    edited: float = Field(0.15, ge=0, le=1, description="records a person edited later in the UI")
    domain_variants: float = Field(
        0.05, ge=0, le=1, description="domains typed www.X / in capitals"
    )
    other_companies: int = Field(25, ge=0, description="companies the warehouse does not know")
    other_contacts: int = Field(50, ge=0, description="contacts the warehouse does not know")
    associate: bool = Field(True, description="contacts associated with their company")

    @classmethod
    def parse(cls, text: str) -> PortalSeed:
        """``default``, ``k=v,k=v``, a JSON object or ``@path.json``."""
        text = text.strip()
        if text in ("", "default"):
            return cls()
        if text.startswith("@"):
            text = Path(text[1:]).read_text()
        if text.startswith("{"):
            return cls.model_validate(json.loads(text))
        pairs = {}
        for part in text.split(","):
            key, sep, value = part.partition("=")
            if not sep:
                raise ValueError(f"expected key=value in the portal spec, not {part!r}")
            pairs[key.strip()] = value.strip()
        return cls.model_validate(pairs)


def _stamp(us: int) -> str:
    return format_datetime(dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us))


class PortalSeeder:
    def __init__(self, objects: ObjectService, merges: MergeService) -> None:
        self.objects = objects
        self.merges = merges
        self.store = objects.store

    def seed(self, spec: PortalSeed) -> dict[str, Any]:
        """Fill an empty portal; returns (and keeps) the manifest of what was planted."""
        if any(self.store.records.get(t) for t in ("0-1", "0-2")) or self.store.merged:
            raise ValueError("the portal is not empty: reset it first (POST /__sandbox/reset)")
        with self.store.transaction():
            manifest = _Run(self, spec).build()
            self.store._set_meta(MANIFEST_KEY, json.dumps(manifest))
        return manifest

    def manifest(self) -> dict[str, Any] | None:
        row = self.store._db.execute(
            "SELECT value FROM meta WHERE key = ?", (MANIFEST_KEY,)
        ).fetchone()
        return json.loads(row[0]) if row else None


class _Run:
    """One seeding, in the store's open transaction."""

    def __init__(self, seeder: PortalSeeder, spec: PortalSeed) -> None:
        self.s = seeder
        self.spec = spec
        self.rng = np.random.default_rng([spec.seed, 424242])
        self.co = Company.build(spec.seed, spec.accounts, spec.start)
        self.end_us = int(dt.datetime.combine(spec.start, dt.time(), dt.UTC).timestamp()) * US
        self.contacts_ot = seeder.objects.object_type("contacts")
        self.companies_ot = seeder.objects.object_type("companies")
        self.primary = next(
            at
            for at in seeder.store.association_types_between("0-1", "0-2")
            if at.label == "Primary"
        )

    # ------------------------------------------------------------ writes
    def _create(self, ot: Any, props: dict[str, str], us: int, source: WriteSource) -> Record:
        values = {k: v for k, v in props.items() if v}
        [(rec, _)] = self.s.objects._apply(ot, [(None, values)], _stamp(us), source, notify=False)
        return rec

    def _edit(self, ot: Any, rec: Record, props: dict[str, str], us: int) -> None:
        person = WriteSource.person(int(OWNERS[int(self.rng.integers(len(OWNERS)))]["id"]))
        self.s.objects._apply(ot, [(rec, props)], _stamp(us), person, notify=False)

    def _when(self, after_us: int) -> int:
        """A moment between ``after_us`` and the warehouse's start."""
        span = max(self.end_us - after_us, DAY_US)
        return int(after_us + self.rng.integers(1, span))

    def _pick(self, n: int, share: float) -> np.ndarray:
        return np.flatnonzero(self.rng.random(n) < share)

    # ------------------------------------------------------------ build
    def build(self) -> dict[str, Any]:
        spec, co, rng = self.spec, self.co, self.rng
        accounts = _accounts_table(co, np.arange(co.n_accounts, dtype=np.int64)).to_pylist()
        chosen = self._pick(co.n_accounts, spec.companies)
        company_of: dict[int, Record] = {}
        out_co: dict[str, Any] = {
            "matching": [],
            "duplicated_domains": [],
            "merged": [],
            "domain_variants": [],
            "edited": [],
            "unmatched": [],
        }
        for i in chosen.tolist():
            a = accounts[i]
            domain, kind = a["domain"], "matching"
            roll = rng.random()
            if roll < spec.domain_variants:
                domain = f"www.{domain}" if rng.random() < 0.5 else domain.upper()
                kind = "domain_variants"
            created_us = int(co.created_us[i]) + int(rng.integers(0, 90)) * DAY_US
            created_us = min(created_us, self.end_us - 2 * DAY_US)
            props = {
                "name": a["name"] if rng.random() < 0.6 else a["name"].rsplit(" ", 1)[0],
                "domain": domain,
                "industry": a["industry"] if rng.random() < 0.7 else "",
                "country": a["country"] if rng.random() < 0.8 else "",
                "numberofemployees": str(max(1, int(a["employee_count"] * rng.uniform(0.5, 1.5)))),
                "lifecyclestage": STAGES[int(rng.integers(len(STAGES)))],
            }
            source = (WriteSource("IMPORT", None), WriteSource.person(), OTHER_APP)[
                int(rng.choice(3, p=[0.5, 0.35, 0.15]))
            ]
            rec = self._create(self.companies_ot, props, created_us, source)
            company_of[i] = rec
            second = rng.random()
            if second < spec.duplicates + spec.merged:
                dup_us = self._when(created_us)
                dup = self._create(
                    self.companies_ot,
                    {"name": a["name"], "domain": a["domain"], "phone": f"+1 555 {i:04d}"},
                    dup_us,
                    WriteSource.person(),
                )
                if second < spec.merged:
                    survivor = self.s.merges._merge(
                        self.companies_ot,
                        rec,
                        dup,
                        sorted([rec.id, dup.id]),
                        _stamp(self._when(dup_us)),
                    )
                    company_of[i] = survivor
                    out_co["merged"].append(
                        {
                            "id": str(survivor.id),
                            "merged": [str(rec.id), str(dup.id)],
                            "domain": a["domain"],
                        }
                    )
                    continue
                out_co["duplicated_domains"].append(
                    {"domain": a["domain"], "ids": [str(rec.id), str(dup.id)]}
                )
                continue
            out_co[kind].append(str(rec.id))
        self._edit_some(self.companies_ot, list(company_of.values()), COMPANY_EDITS, out_co)
        for n in range(spec.other_companies):
            w1, w2 = WORDS_A[n % len(WORDS_A)], WORDS_B[(n * 7) % len(WORDS_B)]
            domain = f"{w1}-{w2}-{n}.com"  # the warehouse's domains have no hyphen
            rec = self._create(
                self.companies_ot,
                {"name": f"{w1.title()} {w2.title()} Partners", "domain": domain},
                self._when(self.end_us - 900 * DAY_US),
                WriteSource("IMPORT", None),
            )
            out_co["unmatched"].append(str(rec.id))
        out_ct = self._contacts(company_of)
        return {
            "spec": json.loads(spec.model_dump_json()),
            "companies": {"total": len(self.s.store.records["0-2"]), **out_co},
            "contacts": {"total": len(self.s.store.records["0-1"]), **out_ct},
        }

    def _edit_some(
        self, ot: Any, recs: list[Record], fields: tuple[str, ...], out: dict[str, Any]
    ) -> None:
        for rec in recs:
            if self.rng.random() >= self.spec.edited:
                continue
            name = fields[int(self.rng.integers(len(fields)))]
            value = {
                "phone": f"+1 555 {int(self.rng.integers(1000, 9999))}",
                "numberofemployees": str(int(self.rng.integers(5, 5000))),
                "lifecyclestage": "customer",
                "name": f"{rec.properties.get('name', 'Company')} (HQ)",
                "jobtitle": "Head of RevOps",
                "firstname": (rec.properties.get("firstname") or "Sam") + "ie",
            }[name]
            stamp_us = self._when(self._us(rec.updated_at))
            self._edit(ot, rec, {name: value}, stamp_us)
            out["edited"].append({"id": str(rec.id), "property": name, "value": value})

    @staticmethod
    def _us(iso: str) -> int:
        moment = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
        return int(moment.timestamp() * US)

    def _contacts(self, company_of: dict[int, Record]) -> dict[str, Any]:
        spec, co, rng = self.spec, self.co, self.rng
        users = _users_table(co, np.arange(co.n_users, dtype=np.int64)).to_pylist()
        out: dict[str, Any] = {
            "matching": [],
            "merged": [],
            "via_additional_email": [],
            "edited": [],
            "unmatched": [],
            "associations": 0,
        }
        made: list[Record] = []
        for u in self._pick(co.n_users, spec.contacts).tolist():
            user = users[u]
            acc = int(co.user_account[u])
            created_us = min(
                int(co.user_created_us[u]) + int(rng.integers(0, 60)) * DAY_US,
                self.end_us - 2 * DAY_US,
            )
            props = {
                "email": user["email"].lower(),
                "firstname": user["first_name"],
                "lastname": user["last_name"] if rng.random() < 0.9 else "",
                "jobtitle": user["job_title"] or "",
                "lifecyclestage": STAGES[int(rng.integers(len(STAGES)))],
            }
            source = (WriteSource("FORM", None), WriteSource("IMPORT", None), WriteSource.person())[
                int(rng.choice(3, p=[0.4, 0.4, 0.2]))
            ]
            rec = self._create(self.contacts_ot, props, created_us, source)
            if rng.random() < spec.merged:
                alias = f"{user['first_name'].lower()}.{u + 1}@{user['email'].split('@', 1)[1]}"
                other = self._create(
                    self.contacts_ot,
                    {"email": alias, "firstname": user["first_name"], "phone": f"+1 555 {u:05d}"},
                    self._when(created_us),
                    WriteSource.person(),
                )
                warehouse_is_primary = rng.random() < 0.5
                first, second = (rec, other) if warehouse_is_primary else (other, rec)
                survivor = self.s.merges._merge(
                    self.contacts_ot,
                    first,
                    second,
                    sorted([rec.id, other.id]),
                    _stamp(self._when(self._us(other.created_at))),
                )
                entry = {"id": str(survivor.id), "merged": [str(rec.id), str(other.id)]}
                out["merged"].append(entry)
                if not warehouse_is_primary:
                    out["via_additional_email"].append(
                        {"id": str(survivor.id), "email": props["email"]}
                    )
                rec = survivor
            else:
                out["matching"].append(str(rec.id))
            made.append(rec)
            company = company_of.get(acc)
            if spec.associate and company is not None:
                self.s.objects.associations._link_with_default(
                    self.contacts_ot, rec.id, self.companies_ot, company.id, [self.primary]
                )
                out["associations"] += 1
        self._edit_some(self.contacts_ot, made, CONTACT_EDITS, out)
        for n in range(spec.other_contacts):
            first = FIRST_NAMES[n % len(FIRST_NAMES)]
            last = LAST_NAMES[(n * 5) % len(LAST_NAMES)]
            email = f"{first}.{last}.lead{n}@{FREEMAIL[n % len(FREEMAIL)]}"
            rec = self._create(
                self.contacts_ot,
                {
                    "email": email,
                    "firstname": first.title(),
                    "lastname": last.title(),
                    "lifecyclestage": "subscriber",
                },
                self._when(self.end_us - 700 * DAY_US),
                WriteSource("FORM", None),
            )
            out["unmatched"].append(str(rec.id))
        return out
