"""Adoption benchmark: the first sync into a portal that already holds N companies and 3N
contacts without our external ids, then the incremental refresh when 1% of records changed.

The engine's real path — ``sync_object`` (full refresh → plan with adoption in DuckDB → push
by ``batch/update`` / ``batch/upsert``) and ``incremental_refresh`` — runs against an
in-process fake HubSpot (``httpx.MockTransport``) that pages the portal's records, answers
search and batch writes instantly, and counts every call. So the figures are spokesync's own
cost and its exact call counts; HubSpot's latency and rate limits are not in the wall time.

Portal: half the warehouse's companies exist (by domain; 2% of those twice → ambiguous), plus
10% companies the warehouse does not know; half the contacts exist (by primary email), 5% of
users only through ``hs_additional_emails`` of another contact.

    .venv/bin/python -m bench.bench_adoption                      # 100k companies, 300k contacts
    .venv/bin/python -m bench.bench_adoption --companies 20000
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import datetime as dt
import json
import math
import os
import re
import resource
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import duckdb
import httpx

from bench.machine import describe
from spokesync import warehouse
from spokesync.hubspot.client import HubSpotClient
from spokesync.hubspot.push import PushConfig
from spokesync.hubspot.rate_limit import RateLimiter
from spokesync.hubspot.retry import RetryPolicy
from spokesync.mapping import load_mapping
from spokesync.settings import Settings
from spokesync.sync.refresh import incremental_refresh
from spokesync.sync.runner import SyncOptions, sync_object

AS_OF = dt.date(2026, 1, 15)
COMPANIES_YAML = """object_type: companies
id: {property: spokesync_account_id, column: account_id}
source: {sql: SELECT * FROM accounts}
fields:
  - {property: name, type: string, column: name}
  - {property: domain, type: string, format: domain, column: domain}
  - {property: country, type: string, column: country}
  - {property: spokesync_plan, type: enumeration, column: plan, options: [starter, growth], label: Plan, group: spokesync}
  - {property: spokesync_mrr, type: number, column: mrr, label: MRR, group: spokesync}
"""
CONTACTS_YAML = """object_type: contacts
id: {property: email, column: email}
source: {sql: SELECT * FROM users}
fields:
  - {property: firstname, type: string, column: first_name}
  - {property: spokesync_user_id, type: string, column: user_id, label: User ID, group: spokesync}
  - {property: lifecyclestage, type: enumeration, expr: "'customer'", owner: hubspot, options: [lead, customer]}
"""


def build_warehouse(root: Path, n_companies: int) -> None:
    wh = root / "warehouse"
    con = duckdb.connect()
    for table, sql in {
        "accounts": f"SELECT 'A' || lpad(CAST(i AS VARCHAR), 8, '0') AS account_id, "
        f"'Account ' || i AS name, 'acct' || i || '.example.com' AS domain, "
        f"['DE','US','FR'][1 + i % 3] AS country, ['starter','growth'][1 + i % 2] AS plan, "
        f"i % 1000 AS mrr FROM range({n_companies}) t(i)",
        "users": f"SELECT 'U' || lpad(CAST(i AS VARCHAR), 9, '0') AS user_id, "
        f"'user' || i || '@acct' || (i // 3) || '.example.com' AS email, "
        f"'First' || i AS first_name FROM range({3 * n_companies}) t(i)",
    }.items():
        path = warehouse.master_path(wh, table)
        path.parent.mkdir(parents=True, exist_ok=True)
        con.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet)")
    con.close()
    (root / "companies.yaml").write_text(COMPANIES_YAML)
    (root / "contacts.yaml").write_text(CONTACTS_YAML)


class FakePortal:
    """Records by object, paged like HubSpot; counts calls by kind."""

    def __init__(self, n: int) -> None:
        self.records: dict[str, dict[str, dict[str, Any]]] = {"companies": {}, "contacts": {}}
        self.unique: dict[tuple[str, str], dict[str, str]] = {}  # (object, property) -> value -> id
        self.version = 0  # moves on every write; the search index is rebuilt after one
        self.sorted_at: dict[str, int] = {}
        self.sorted_index: dict[str, list[tuple[int, int]]] = {}
        self.calls: dict[str, int] = {}
        self.next_id = 10_000_000
        stamp = "2026-01-10T00:00:00.000Z"
        for i in range(0, n, 2):  # half the accounts exist, by domain, without our id
            self._add(
                "companies", {"name": f"Old {i}", "domain": f"www.acct{i}.example.com"}, stamp
            )
            if i % 100 == 0:  # 2% of those twice → ambiguous
                self._add(
                    "companies", {"name": f"Dup {i}", "domain": f"acct{i}.example.com"}, stamp
                )
        for i in range(n // 10):
            self._add("companies", {"name": f"Other {i}", "domain": f"other{i}.example.org"}, stamp)
        for i in range(0, 3 * n, 2):  # half the users exist by primary email
            self._add("contacts", {"email": f"user{i}@acct{i // 3}.example.com"}, stamp)
        for i in range(1, 3 * n, 20):  # 5% only via an additional email
            self._add(
                "contacts",
                {
                    "email": f"alias{i}@old.example.com",
                    "hs_additional_emails": f"user{i}@acct{i // 3}.example.com",
                },
                stamp,
            )

    @staticmethod
    def now() -> str:
        return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    def _add(self, ot: str, props: dict[str, str], stamp: str) -> str:
        self.next_id += 1
        rid = str(self.next_id)
        self.version += 1
        modified = "lastmodifieddate" if ot == "contacts" else "hs_lastmodifieddate"
        self.records[ot][rid] = {**props, "hs_object_id": rid, modified: stamp}
        for (t, prop), index in self.unique.items():
            if t == ot and props.get(prop):
                index[str(props[prop]).lower()] = rid
        return rid

    def count(self, kind: str) -> None:
        self.calls[kind] = self.calls.get(kind, 0) + 1

    def touch(self, ot: str, share: float, prop: str, value: str) -> int:
        """A person edits ``share`` of the records of ``ot`` now."""
        modified = "lastmodifieddate" if ot == "contacts" else "hs_lastmodifieddate"
        now = self.now()
        ids = list(self.records[ot])[:: int(1 / share)]
        self.version += 1
        for rid in ids:
            self.records[ot][rid][prop] = value
            self.records[ot][rid][modified] = now
        return len(ids)

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        m = re.match(
            r"^/crm/(?:v3/)?(?:objects|properties)/(?:[^/]+/)?(companies|contacts)(.*)$", path
        )
        if "/properties/" in path:
            self.count("properties")
            if path.endswith("/groups"):
                return httpx.Response(200, json={"results": [{"name": "spokesync"}]})
            return httpx.Response(200, json={"results": PROPERTIES[m.group(1)] if m else []})
        assert m, path
        ot, rest = m.group(1), m.group(2)
        if request.method == "GET" and rest == "":
            self.count(f"{ot} list")
            q = parse_qs(request.url.query.decode())
            after, limit = int(q.get("after", ["0"])[0]), int(q["limit"][0])
            ids = list(self.records[ot])[after : after + limit]
            body: dict[str, Any] = {"results": [self._json(ot, r) for r in ids]}
            if after + limit < len(self.records[ot]):
                body["paging"] = {"next": {"after": str(after + limit)}}
            return httpx.Response(200, json=body)
        body_in = json.loads(request.content)
        if rest == "/search":
            self.count(f"{ot} search")
            return httpx.Response(200, json=self._search(ot, body_in))
        results = []
        if rest == "/batch/update":
            self.count(f"{ot} batch/update")
            for item in body_in["inputs"]:
                self._update(ot, item["id"], item["properties"])
                results.append(
                    {**self._json(ot, item["id"]), "objectWriteTraceId": item["objectWriteTraceId"]}
                )
        elif rest == "/batch/upsert":
            # HubSpot's upsert updates the record holding the id value (emails compare
            # lowercased) and creates one only when none does. (Creating every time made
            # duplicate contacts of those matched by primary email, which the 1% refresh then
            # read back as drift on spokesync_user_id and lifecyclestage.)
            self.count(f"{ot} batch/upsert")
            for item in body_in["inputs"]:
                id_prop, key = item["idProperty"], str(item["id"]).strip().lower()
                props = {id_prop: key, **item["properties"]}
                rid = self._holder(ot, id_prop, key)
                created = rid is None
                if rid is None:
                    rid = self._add(ot, props, self.now())
                else:
                    self._update(ot, rid, props)
                results.append(
                    {
                        **self._json(ot, rid),
                        "new": created,
                        "objectWriteTraceId": item["objectWriteTraceId"],
                    }
                )
        else:
            raise AssertionError(path)
        return httpx.Response(200, json={"status": "COMPLETE", "results": results})

    def _search(self, ot: str, body: dict[str, Any]) -> dict[str, Any]:
        """Ranges on the modified date (GTE/LTE/EQ) and ``hs_object_id GT``, sorted by the
        date or the id, from an index kept sorted while nothing is written (HubSpot answers a
        page in about constant time; re-sorting the portal per page made the fake the cost)."""
        (group,) = body["filterGroups"]
        modified = "lastmodifieddate" if ot == "contacts" else "hs_lastmodifieddate"
        if self.sorted_at.get(ot) != self.version:
            self.sorted_index[ot] = sorted(
                (_ms(p[modified]), int(rid)) for rid, p in self.records[ot].items()
            )
            self.sorted_at[ot] = self.version
        index = self.sorted_index[ot]
        lo, hi, after_id = -1, 2**63, -1
        for f in group["filters"]:
            v = int(f["value"])
            if f["propertyName"] == "hs_object_id":
                after_id = v
            elif f["operator"] == "GTE":
                lo = max(lo, v)
            elif f["operator"] == "LTE":
                hi = min(hi, v)
            elif f["operator"] == "EQ":
                lo, hi = max(lo, v), min(hi, v)
        a, b = bisect.bisect_left(index, (lo, -1)), bisect.bisect_right(index, (hi, 2**63))
        hits = [rid for _, rid in index[a:b] if rid > after_id]
        if body["sorts"][0]["propertyName"] == "hs_object_id":
            hits.sort()
        after, limit = int(body.get("after", "0")), body["limit"]
        page = hits[after : after + limit]
        out: dict[str, Any] = {
            "total": len(hits),
            "results": [self._json(ot, str(r)) for r in page],
        }
        if after + limit < len(hits):
            out["paging"] = {"next": {"after": str(after + limit)}}
        return out

    def _holder(self, ot: str, prop: str, key: str) -> str | None:
        """The record whose ``prop`` is ``key`` (an index per property, built on first use)."""
        index = self.unique.setdefault((ot, prop), {})
        if not index:
            for rid, p in self.records[ot].items():
                if p.get(prop):
                    index[str(p[prop]).lower()] = rid
        return index.get(key)

    def _update(self, ot: str, rid: str, props: dict[str, str]) -> None:
        """A write to an existing record; an email promoted from ``hs_additional_emails`` to
        ``email`` leaves the additional list (a contact holds each address once)."""
        rec = self.records[ot][rid]
        self.version += 1
        for (t, prop), index in self.unique.items():
            if t == ot and prop in props and rec.get(prop):
                index.pop(str(rec[prop]).lower(), None)
        rec.update(props)
        if ot == "contacts" and rec.get("hs_additional_emails") and props.get("email"):
            kept = [
                e for e in rec["hs_additional_emails"].split(";")
                if e.strip().lower() != props["email"].strip().lower()
            ]  # fmt: skip
            rec["hs_additional_emails"] = ";".join(kept)
        for (t, prop), index in self.unique.items():
            if t == ot and rec.get(prop):
                index[str(rec[prop]).lower()] = rid
        rec["lastmodifieddate" if ot == "contacts" else "hs_lastmodifieddate"] = self.now()

    def _json(self, ot: str, rid: str) -> dict[str, Any]:
        props = self.records[ot][rid]
        modified = props["lastmodifieddate" if ot == "contacts" else "hs_lastmodifieddate"]
        return {"id": rid, "properties": dict(props), "updatedAt": modified, "archived": False}


def _ms(value: str) -> int:
    return int(dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def _props(names: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [
        {"name": n, "type": t, "fieldType": "text", "hasUniqueValue": n.endswith("_id")}
        for n, t in names
    ]


PROPERTIES = {
    "companies": _props(
        [("name", "string"), ("domain", "string"), ("country", "string"),
         ("spokesync_account_id", "string"), ("spokesync_plan", "enumeration"),
         ("spokesync_mrr", "number")]
    ),
    "contacts": _props(
        [("email", "string"), ("firstname", "string"), ("spokesync_user_id", "string"),
         ("lifecyclestage", "enumeration")]
    ),
}  # fmt: skip


def peak_rss_mb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


async def run(root: Path, n: int) -> dict[str, dict[str, Any]]:
    """Both objects' first sync, then the next night's refresh; returns the figures."""
    portal = FakePortal(n)
    existing = {ot: len(r) for ot, r in portal.records.items()}
    settings = Settings.from_env(
        environ={}, home=root, env="test", hubspot_base_url="http://hubspot.test",
        hubspot_token="pat-bench",
    )  # fmt: skip
    client = HubSpotClient(
        "http://hubspot.test",
        "pat-bench",
        transport=httpx.MockTransport(portal.handle),
        limiter=RateLimiter(per_interval=1_000_000, search_per_second=1_000_000),
        retry=RetryPolicy(max_attempts=1),
    )
    # The fake portal has the properties already; the sync reads them back, nothing else.
    options = SyncOptions(
        push=PushConfig(concurrency=8), refresh="incremental", ensure_properties=False
    )
    print(f"{describe()} duckdb={duckdb.__version__} load={os.getloadavg()[0]:.1f}")
    print(f"portal before: {existing['companies']:,} companies, {existing['contacts']:,} contacts")
    results: dict[str, dict[str, Any]] = {}
    for name in ("companies", "contacts"):
        mapping = load_mapping(root / f"{name}.yaml")
        before = dict(portal.calls)
        t0 = time.perf_counter()
        s = await sync_object(settings, mapping, AS_OF, "bench", options, client)
        wall = time.perf_counter() - t0
        calls = {k: v - before.get(k, 0) for k, v in portal.calls.items() if v != before.get(k, 0)}
        adopted, created = s.records_adopted, s.records_new
        reads = calls.get(f"{name} list", 0)
        goal_reads = math.ceil(existing[name] / 100)
        goal_writes = math.ceil(adopted / 100) + math.ceil(created / 100)
        writes = calls.get(f"{name} batch/update", 0) + calls.get(f"{name} batch/upsert", 0)
        results[name] = {
            "first_sync": {
                "desired": s.records_desired,
                "adopted": adopted,
                "created": created,
                "ambiguous": s.records_ambiguous,
                "reads": reads,
                "writes": writes,
                "wall_s": round(wall, 1),
            }
        }
        print(
            f"first sync {name}: desired {s.records_desired:,}, adopted {adopted:,}, created "
            f"{created:,}, ambiguous {s.records_ambiguous:,}; read calls {reads:,} (goal "
            f"{goal_reads:,} pages), write calls {writes:,} (goal ⌈adopted/100⌉+⌈created/100⌉ "
            f"= {goal_writes:,}), all calls {calls}; wall {wall:.1f} s; peak RSS "
            f"{peak_rss_mb()} MB",
            flush=True,
        )
    for name, prop in (("companies", "country"), ("contacts", "firstname")):
        mapping = load_mapping(root / f"{name}.yaml")
        # The next night: people edited 1% of the records since the first sync. Its own
        # writes moved every last-modified date too; they are counted, not read back.
        await asyncio.sleep(0.01)
        changed = portal.touch(name, 0.01, prop, "Edited by a person")
        before = portal.calls.get(f"{name} search", 0)
        t0 = time.perf_counter()
        report = await incremental_refresh(settings, mapping, client, "bench-inc")
        wall = time.perf_counter() - t0
        searches = portal.calls.get(f"{name} search", 0) - before
        drifted = sorted({d.property for d in report.drift.samples})
        results[name]["refresh"] = {
            "edited": changed,
            "read": report.drift.records_read,
            "searches": searches,
            "count_checks": report.count_checks,
            "known": report.known,
            "known_verified": report.known_verified,
            "values_drifted": report.drift.values_drifted,
            "records_drifted": report.drift.records_drifted,
            "drifted_properties": drifted,
            "wall_s": round(wall, 1),
        }
        print(
            f"first incremental refresh {name} after the first sync, 1% edited by people "
            f"({changed:,}): read {report.drift.records_read:,} records, search calls "
            f"{searches:,} ({report.count_checks:,} counts; our {report.known:,} writes in the "
            f"window, {report.known_verified:,} confirmed by count, not read; at HubSpot's 5/s "
            f"≥ {searches / 5:.1f} s), drifted values {report.drift.values_drifted:,} on "
            f"{report.drift.records_drifted:,} records ({', '.join(drifted)}); spokesync wall "
            f"{wall:.1f} s; peak RSS {peak_rss_mb()} MB",
            flush=True,
        )
    await client.aclose()
    results["portal"] = {
        ot: {
            "records": len(recs),
            "duplicate_emails": len(recs)
            - len({str(p.get("email")).lower() for p in recs.values()}),
        }
        for ot, recs in portal.records.items()
    }
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--companies", type=int, default=100_000, help="warehouse accounts (users: 3x)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_adoption_") as tmp:
        root = Path(tmp)
        build_warehouse(root, args.companies)
        asyncio.run(run(root, args.companies))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
