"""The sandbox's memory per record at scale (not a test; prints figures).

    .venv/bin/python -m bench.bench_sandbox_memory --companies 100000 --contacts 500000
    .venv/bin/python -m bench.bench_sandbox_memory --companies 100000 --contacts 500000 --seed-path bulk

A fresh in-process sandbox app (SQLite file in a temporary directory) is given the custom
properties of the shipped ``companies.yaml`` and ``contacts.yaml`` mappings, then filled with
records shaped like the ones a first ``spokesync sync`` writes (every mapped property, values of
the warehouse's lengths), and every contact is associated with its company (unlabeled + Primary,
as the contacts mapping links them). Two seed paths:

- ``api`` (default): the HTTP handlers' own logic in-process, 100 inputs per call:
  ``batch/upsert`` by the id property (validation, unique index, history, write-through) and the
  v4 ``batch/create`` of associations; HTTP framing is the only thing left out;
- ``bulk``: :func:`spokesync.sandbox.bulk.bulk_load`, the benchmark seed path (the same stored
  state, history versions included, without per-call validation).

Reports resident memory (``/proc/self/statm``, after a full GC) before and after each object,
the bytes per record and per association, peak RSS, seeding time, and the CPU of a few calls
on the full portal (a 100-record upsert of existing records, a search page, an association
batch read), each the median of several.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.machine import describe
from spokesync.mapping.loader import load_mapping
from spokesync.mapping.spec import DEFAULT_FIELD_TYPES
from spokesync.sandbox.app import SandboxConfig, create_app
from spokesync.sandbox.catalog import Option, PropertyDef
from spokesync.sync.runner import DEFAULT_MAPPINGS_DIR

FIRST_ID = 10_000_001
OPTIONS: dict[str, list[str]] = {}  # enumeration property -> its option values


def rss_mb() -> float:
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def mapped_properties(app: Any, object_name: str) -> list[tuple[str, str]]:
    """(name, type) of every property the shipped mapping writes; custom ones are created."""
    spec = load_mapping(DEFAULT_MAPPINGS_DIR / f"{object_name}.yaml")
    ot = app.objects.object_type(object_name)
    known = app.store.properties[ot.type_id]
    out = [(spec.id.property, "string")] if spec.id.property != "email" else []
    out += [(f.property, str(f.type)) for f in spec.fields]
    options = {f.property: list(f.options or ["tier_a", "tier_b", "tier_c"]) for f in spec.fields}
    for name, kind in out:
        if kind == "enumeration" and name in known:
            OPTIONS[name] = [o.value for o in known[name].options]
        elif kind == "enumeration":
            OPTIONS[name] = options[name]
        if name not in known:
            app.store.save_property(
                ot.type_id,
                PropertyDef(
                    name=name,
                    label=name,
                    type=kind,
                    field_type=DEFAULT_FIELD_TYPES.get(kind, "text"),
                    group_name="spokesync",
                    has_unique_value=name == spec.id.property,
                    hubspot_defined=False,
                    options=[Option(v, v, i) for i, v in enumerate(OPTIONS.get(name, []))],
                ),
            )
    return [(n, k) for n, k in dict(out).items()]


def value(name: str, kind: str, i: int, day: int) -> str:
    """A value of the warehouse's length for property ``name`` of record ``i``."""
    if name in ("spokesync_account_id",):
        return f"acc_{i:07d}"
    if name == "spokesync_user_id":
        return f"usr_{i:08d}"
    if name == "domain":
        return f"company{i}.io"
    if name == "name":
        return f"Company {i} Labs Inc"
    if name == "country":
        return ("United States", "Germany", "France", "Japan")[i % 4]
    if name == "hubspot_owner_id":
        return ""
    if name == "lifecyclestage":
        return ("lead", "opportunity", "customer")[i % 3]
    if kind == "enumeration":
        opts = OPTIONS.get(name) or [""]
        return opts[i % len(opts)]
    if name == "firstname":
        return ("Ada", "Grace", "Linus", "Margaret")[i % 4]
    if name == "lastname":
        return ("Lovelace", "Hopper", "Torvalds", "Hamilton")[i % 4] + str(i % 97)
    if name == "jobtitle":
        return ("Head of Data", "Software Engineer", "VP Sales", "")[i % 4]
    if kind == "number":
        return str((i * 7919 + day) % 10_000)
    if kind == "bool":
        return ("true", "false")[i % 2]
    if kind == "date":
        return f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}"
    if kind == "datetime":
        return f"2026-11-{1 + day % 28:02d}T{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}.000Z"
    return f"{name[-6:]}-{i % 1000}"


def company_props(props: list[tuple[str, str]], i: int, day: int) -> dict[str, str]:
    return {n: v for n, k in props if (v := value(n, k, i, day))}


def contact_props(props: list[tuple[str, str]], i: int, account: int, day: int) -> dict[str, str]:
    out = {n: v for n, k in props if n != "email" and (v := value(n, k, i, day))}
    out["spokesync_account_id"] = f"acc_{account:07d}"
    return out


def seed_api(app: Any, n_co: int, n_ct: int, co_props: list, ct_props: list) -> dict[str, float]:
    figures = {}
    t0 = time.perf_counter()
    for start in range(0, n_co, 100):
        inputs = [
            {
                "id": f"acc_{i:07d}",
                "idProperty": "spokesync_account_id",
                "objectWriteTraceId": str(i),
                "properties": company_props(co_props, i, 0),
            }
            for i in range(start, min(n_co, start + 100))
        ]
        status, _ = app.objects.batch_upsert("companies", {"inputs": inputs})
        assert status == 200, status
    figures["companies_s"] = time.perf_counter() - t0
    figures["companies_mb"] = rss_mb()
    print(
        f"  {n_co:,} companies in {figures['companies_s']:.1f} s, RSS {figures['companies_mb']:,.0f} MB",
        flush=True,
    )
    t0 = time.perf_counter()
    for start in range(0, n_ct, 100):
        inputs = [
            {
                "id": f"user{i}@company{i % n_co}.io",
                "idProperty": "email",
                "properties": contact_props(ct_props, i, i % n_co, 0),
            }
            for i in range(start, min(n_ct, start + 100))
        ]
        status, _ = app.objects.batch_upsert("contacts", {"inputs": inputs})
        assert status == 200, status
    figures["contacts_s"] = time.perf_counter() - t0
    figures["contacts_mb"] = rss_mb()
    t0 = time.perf_counter()
    first_contact = FIRST_ID + n_co
    for start in range(0, n_ct, 100):
        inputs = [
            {
                "from": {"id": str(first_contact + i)},
                "to": {"id": str(FIRST_ID + i % n_co)},
                "types": [
                    {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279},
                    {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1},
                ],
            }
            for i in range(start, min(n_ct, start + 100))
        ]
        status, _ = app.associations.batch_create("contacts", "companies", {"inputs": inputs})
        assert status == 201, status
    figures["associations_s"] = time.perf_counter() - t0
    figures["associations_mb"] = rss_mb()
    return figures


def seed_bulk(app: Any, n_co: int, n_ct: int, co_props: list, ct_props: list) -> dict[str, float]:
    from spokesync.sandbox.bulk import Associate, bulk_load

    figures = {}
    t0 = time.perf_counter()
    bulk_load(
        app.objects, "companies", (company_props(co_props, i, 0) for i in range(n_co)), total=n_co
    )
    figures["companies_s"] = time.perf_counter() - t0
    figures["companies_mb"] = rss_mb()
    print(
        f"  {n_co:,} companies in {figures['companies_s']:.1f} s, RSS {figures['companies_mb']:,.0f} MB",
        flush=True,
    )
    t0 = time.perf_counter()
    rows = (
        {"email": f"user{i}@company{i % n_co}.io", **contact_props(ct_props, i, i % n_co, 0)}
        for i in range(n_ct)
    )
    # the bulk path links as it loads: contacts and associations are timed together
    link = Associate(
        toObjectType="companies",
        column="spokesync_account_id",
        toProperty="spokesync_account_id",
        labels=["Primary"],
    )
    bulk_load(app.objects, "contacts", rows, associate=link, total=n_ct)
    figures["contacts_s"] = time.perf_counter() - t0
    figures["associations_s"] = 0.0
    figures["associations_mb"] = rss_mb()
    figures["contacts_mb"] = figures["associations_mb"]  # not separable on this path
    return figures


def cpu_ms(fn: Any, repeats: int = 7) -> float:
    times = []
    for r in range(repeats):
        t0 = time.process_time()
        fn(r)
        times.append((time.process_time() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--companies", type=int, default=100_000)
    parser.add_argument("--contacts", type=int, default=500_000)
    parser.add_argument("--seed-path", choices=("api", "bulk"), default="api")
    args = parser.parse_args()
    n_co, n_ct = args.companies, args.contacts
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "sandbox.sqlite"
        app = create_app(SandboxConfig(db_path=db, shuffle_results=False))
        co_props = mapped_properties(app, "companies")
        ct_props = mapped_properties(app, "contacts")
        base = rss_mb()
        seed = seed_api if args.seed_path == "api" else seed_bulk
        f = seed(app, n_co, n_ct, co_props, ct_props)
        per_co = (f["companies_mb"] - base) * 1e6 / max(1, n_co)
        per_ct = (f["contacts_mb"] - f["companies_mb"]) * 1e6 / max(1, n_ct)
        per_as = (f["associations_mb"] - f["contacts_mb"]) * 1e6 / max(1, n_ct)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6

        def upsert(r: int) -> None:
            inputs = [
                {
                    "id": f"acc_{i:07d}",
                    "idProperty": "spokesync_account_id",
                    "objectWriteTraceId": str(i),
                    "properties": company_props(co_props, i, r + 1),
                }
                for i in sorted({(r * 1000 + k) % n_co for k in range(100)})
            ]
            assert app.objects.batch_upsert("companies", {"inputs": inputs})[0] == 200

        def search(r: int) -> None:
            body = {
                "filterGroups": [
                    {
                        "filters": [
                            {
                                "propertyName": "lastmodifieddate",
                                "operator": "GTE",
                                "value": "2020-01-01T00:00:00Z",
                            }
                        ]
                    }
                ],
                "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
                "limit": 200,
                "after": str(200 * r),
            }
            assert app.searcher.search("contacts", body, b"{}")[0] == 200

        def assoc_read(r: int) -> None:
            first_contact = FIRST_ID + n_co
            body = {
                "inputs": [
                    {"id": str(first_contact + (r * 1000 + i) % n_ct)}
                    for i in range(min(1000, n_ct))
                ]
            }
            assert app.associations.batch_read("contacts", "companies", body)[0] == 200

        search(0)  # builds the sorted index once (then pages are slices)
        cpu = {
            "upsert": cpu_ms(upsert),
            "search page": cpu_ms(search),
            "assoc read": cpu_ms(assoc_read),
        }
        db_mb = db.stat().st_size / 1e6
        print(describe())
        print(f"load average at end: {os.getloadavg()}")
        print(
            f"seed path {args.seed_path}: {n_co:,} companies in {f['companies_s']:.1f} s, "
            f"{n_ct:,} contacts in {f['contacts_s']:.1f} s, {n_ct:,} associations in "
            f"{f['associations_s']:.1f} s"
        )
        print(
            f"RSS MB: empty {base:,.0f}, +companies {f['companies_mb']:,.0f}, +contacts "
            f"{f['contacts_mb']:,.0f}, +associations {f['associations_mb']:,.0f}; peak {peak:,.0f}; "
            f"SQLite file {db_mb:,.0f} MB"
        )
        if args.seed_path == "api":
            print(
                f"bytes per company {per_co:,.0f}, per contact {per_ct:,.0f}, per association "
                f"(both directions) {per_as:,.0f}"
            )
        else:
            per_both = (f["associations_mb"] - f["companies_mb"]) * 1e6 / max(1, n_ct)
            print(
                f"bytes per company {per_co:,.0f}, per contact with its association {per_both:,.0f}"
            )
        print(
            "CPU ms on the full portal (median of 7): "
            + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
        )


if __name__ == "__main__":
    main()
