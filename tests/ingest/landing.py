"""Write hand-made rows of any source to a landing folder in that source's format."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from spokesync.ingest import ingest_master, ingest_partition
from spokesync.ingest.contract import SOURCES
from spokesync.ingest.report import IngestReport

DAY = "2026-01-05"

# One valid row per source, every value as landed text (Parquet: typed, see land()).
VALID: dict[str, dict[str, str | None]] = {
    "accounts": {
        "account_id": "ACC-000001", "name": "Acme", "domain": "acme.com", "industry": "RETAIL",
        "country": "US", "employee_count": "10", "owner_email": "sam@acme.com",
        "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-02-01T00:00:00Z",
    },
    "firmographics": {
        "domain": "acme.com", "company_name": "Acme", "industry_label": "Software",
        "employees": "120", "hq_country": "US", "updated_at": "2025-02-01T00:00:00Z",
    },
    "users": {
        "user_id": "USR-0000001", "account_id": "ACC-000001", "email": "ada@acme.com",
        "first_name": "Ada", "last_name": "Lovelace", "job_title": "CTO", "role": "admin",
        "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-02-01T00:00:00Z",
    },
    "product_usage": {
        "event_id": "E1", "account_id": "ACC-000001", "user_id": "USR-0000001",
        "event_type": "login", "occurred_at": "2026-01-05T09:00:00Z", "quantity": "1",
    },
    "invoices": {
        "invoice_id": "INV-1", "account_id": "ACC-000001", "subscription_id": "SUB-1",
        "invoice_date": DAY, "due_date": "2026-02-04", "amount": "10.50", "currency": "EUR",
        "status": "paid", "paid_at": "2026-01-05T12:00:00Z",
    },
    "subscriptions": {
        "subscription_id": "SUB-1", "account_id": "ACC-000001", "plan": "growth",
        "status": "active", "seats": "3", "mrr": "75.00", "currency": "USD",
        "started_on": "2025-01-01", "renews_on": "2026-02-01", "canceled_on": "2026-03-01",
        "updated_at": "2026-01-05T09:00:00Z",
    },
    "support_tickets": {
        "ticket_id": "TCK-1", "account_id": "ACC-000001", "requester_email": "ada@acme.com",
        "subject": "Help", "description": "Please", "priority": "low", "status": "new",
        "channel": "email", "created_at": "2026-01-05T10:00:00Z",
        "updated_at": "2026-01-05T11:00:00Z",
    },
}  # fmt: skip


def row(source: str, n: int = 0, **over: str | None) -> dict[str, str | None]:
    """The valid row of ``source`` with key number ``n`` and some values replaced."""
    base = dict(VALID[source])
    key = SOURCES[source].key
    base[key] = f"{base[key]}{n}" if n else base[key]
    if source == "users" and n:
        base["email"] = f"ada{n}@acme.com"
    if source == "firmographics" and n:  # the key is a domain
        base["domain"] = f"acme{n}.com"
    return {**base, **over}


def _typed_usage(rows: list[dict[str, str | None]]) -> pa.Table:
    schema = SOURCES["product_usage"].arrow_schema()
    out = []
    for r in rows:
        t = dict(r)
        if t["occurred_at"] is not None:
            t["occurred_at"] = dt.datetime.fromisoformat(t["occurred_at"])
        if t["quantity"] is not None:
            t["quantity"] = int(t["quantity"])
        out.append(t)
    schema = pa.schema([f.with_nullable(True) for f in schema])
    return pa.Table.from_pylist(out, schema=schema)


def land(
    landing: Path, source: str, rows: list[dict[str, str | None]], raw: str | None = None
) -> Path:
    """Write ``rows`` (or the exact file text ``raw``) as ``source``'s landing file for DAY."""
    fmt = SOURCES[source].format
    match source:
        case "accounts" | "users" | "firmographics":
            path = landing / "master" / f"{source}.csv"
        case "invoices" | "subscriptions":
            path = landing / "erp" / source / f"{source}_{DAY}.csv"
        case "support_tickets":
            path = landing / "support" / "tickets" / f"tickets_{DAY}.jsonl"
        case _:
            path = landing / "product_usage" / f"date={DAY}" / "part-0000.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    if raw is not None:
        path.write_text(raw, encoding="utf-8")
    elif fmt == "parquet":
        pq.write_table(_typed_usage(rows), path)
    elif fmt == "jsonl":
        text = "".join(
            json.dumps({k: v for k, v in r.items() if v is not ...}, ensure_ascii=False) + "\n"
            for r in rows
        )
        path.write_text(text, encoding="utf-8")
    else:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))  # \r\n: quotes \r and \n
        writer.writeheader()
        writer.writerows(rows)
        path.write_bytes(buf.getvalue().encode("utf-8"))
    return path


def ingest(landing: Path, warehouse: Path, source: str, run_id: str = "r1") -> IngestReport:
    if SOURCES[source].partitioned:
        return ingest_partition(source, DAY, landing, warehouse, run_id)
    return ingest_master(source, landing, warehouse, run_id)
