"""HubSpot's portal setting "Automatically create and associate companies with contacts"
(reference §13), switchable per portal (``--auto-create-companies``, ``PATCH /__sandbox/config``).

When on, a contact created (or given a new email) through the API or the UI, and not already
associated with a company, is associated with the company whose domain is its email's domain —
the oldest one when several share it — and when there is none, HubSpot creates one for that
domain (each subdomain its own company). Freemail addresses are ignored, but then the contact's
``website`` is tried. The company gets ``domain`` and a ``name`` made from it (HubSpot fills more
from its own database, which the sandbox does not have); its history source is
``AUTO_ASSOCIATE_BY_DOMAIN``.
"""

from __future__ import annotations

from typing import Any

from spokesync.canonical import canonical_domain
from spokesync.sandbox.catalog import ObjectTypeDef
from spokesync.sandbox.history import WriteSource
from spokesync.sandbox.store import Record

SOURCE = WriteSource("AUTO_ASSOCIATE_BY_DOMAIN", None)
# HubSpot keeps its own list (not published); the common ones
FREEMAIL = frozenset(
    {
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "hotmail.co.uk", "live.com",
        "msn.com", "yahoo.com", "yahoo.co.uk", "ymail.com", "icloud.com", "me.com", "mac.com",
        "aol.com", "gmx.com", "gmx.de", "gmx.net", "web.de", "mail.com", "proton.me",
        "protonmail.com", "zoho.com", "yandex.com", "yandex.ru", "qq.com", "163.com",
    }
)  # fmt: skip


class AutoCompanies:
    def __init__(self, objects: Any, enabled: bool) -> None:
        self.objects = objects
        self.store = objects.store
        self.enabled = enabled
        self._index: dict[str, int] | None = None
        self._index_size = -1  # companies stored when the index was built
        self._own_write = False
        objects.post_write.append(self.after_write)
        objects.listeners.append(self._company_changed)

    # ------------------------------------------------------------ the company index
    def _company_changed(
        self,
        ot: ObjectTypeDef,
        rec: Record,
        values: dict[str, str],
        created: bool,
        source: WriteSource,
    ) -> None:
        if self._own_write or ot.type_id != "0-2":
            return
        if "domain" in values or "hs_additional_domains" in values:
            self._index = None

    def _domains(self, rec: Record) -> list[str]:
        raw = [
            rec.properties.get("domain"),
            *(rec.properties.get("hs_additional_domains") or "").split(";"),
        ]
        return [d for d in (canonical_domain(v) for v in raw if v) if d]

    def _find(self, domain: str) -> Record | None:
        table = self.store.records.get("0-2", {})
        if self._index is None or self._index_size != len(table):
            self._index = {}
            for rid in sorted(table):
                rec = table[rid]
                if not rec.archived:
                    for d in self._domains(rec):
                        self._index.setdefault(d, rid)
            self._index_size = len(table)
        rid = self._index.get(domain)
        rec = None if rid is None else table.get(rid)
        if rec is None or rec.archived or domain not in self._domains(rec):
            self._index = None  # stale (merged, archived, domain edited): look again
            return self._find(domain) if rid is not None else None
        return rec

    # ------------------------------------------------------------ the setting
    def _domain_for(self, contact: Record) -> str | None:
        email = contact.properties.get("email") or ""
        domain = email.rpartition("@")[2] if "@" in email else ""
        if domain and domain not in FREEMAIL:
            return domain
        website = canonical_domain(contact.properties.get("website"))
        return website if website and website not in FREEMAIL else None

    def after_write(
        self, ot: ObjectTypeDef, items: list[tuple[Record, bool, dict[str, str]]]
    ) -> None:
        """Runs in the write's transaction, after its inline associations."""
        if not self.enabled or ot.type_id != "0-1":
            return
        companies = self.objects.object_type("companies")
        assoc = self.objects.associations
        for contact, created, values in items:
            if not (created or "email" in values):
                continue
            domain = self._domain_for(contact)
            if domain is None or self.store.associations.get(("0-1", contact.id, "0-2")):
                continue  # a contact's own company association is never overridden
            company = self._find(domain)
            if company is None:
                name = domain.split(".")[0].replace("-", " ").title()
                self._own_write = True
                try:
                    [(company, _)] = self.objects._apply(
                        companies,
                        [(None, {"domain": domain, "name": name})],
                        contact.updated_at,
                        SOURCE,
                    )
                finally:
                    self._own_write = False
                if self._index is not None:  # keep the index: no rebuild per created company
                    self._index[domain] = company.id
                    self._index_size = len(self.store.records["0-2"])
            primary = [
                at
                for at in self.store.association_types_between("0-1", "0-2")
                if at.label == "Primary"
            ]
            assoc._link_with_default(ot, contact.id, companies, company.id, primary)
