"""The source contract: per source, its columns, logical types, key and landing format.

This is the single description that the readers, the type-parsing step, the Parquet writer
and ``docs/sources.md`` follow. The pandera models in :mod:`spokesync.ingest.schemas` add the
value checks (allowed values, ranges, formats) on top of these types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

Kind = Literal["str", "int", "float", "timestamp", "date"]
Format = Literal["parquet", "csv", "jsonl"]

ARROW_TYPES: dict[str, pa.DataType] = {
    "str": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
}


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: Kind
    nullable: bool = False


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    format: Format
    key: str
    columns: tuple[Column, ...]
    partitioned: bool = True

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if not c.nullable]

    def arrow_schema(self) -> pa.Schema:
        """The warehouse Parquet schema (stable across partitions)."""
        return pa.schema(
            [pa.field(c.name, ARROW_TYPES[c.kind], nullable=c.nullable) for c in self.columns]
        )


def _c(name: str, kind: Kind = "str", nullable: bool = False) -> Column:
    return Column(name, kind, nullable)


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            "accounts",
            "csv",
            "account_id",
            (
                _c("account_id"),
                _c("name"),
                _c("domain"),
                _c("industry"),
                _c("country"),
                _c("employee_count", "int"),
                _c("owner_email"),
                _c("created_at", "timestamp"),
                _c("updated_at", "timestamp"),
            ),
            partitioned=False,
        ),
        Source(
            "users",
            "csv",
            "user_id",
            (
                _c("user_id"),
                _c("account_id"),
                _c("email"),
                _c("first_name"),
                _c("last_name"),
                _c("job_title", nullable=True),
                _c("role"),
                _c("created_at", "timestamp"),
                _c("updated_at", "timestamp"),
            ),
            partitioned=False,
        ),
        Source(
            "product_usage",
            "parquet",
            "event_id",
            (
                _c("event_id"),
                _c("account_id"),
                _c("user_id"),
                _c("event_type"),
                _c("occurred_at", "timestamp"),
                _c("quantity", "int"),
            ),
        ),
        Source(
            "invoices",
            "csv",
            "invoice_id",
            (
                _c("invoice_id"),
                _c("account_id"),
                _c("subscription_id"),
                _c("invoice_date", "date"),
                _c("due_date", "date"),
                _c("amount", "float"),
                _c("currency"),
                _c("status"),
                _c("paid_at", "timestamp", nullable=True),
            ),
        ),
        Source(
            "subscriptions",
            "csv",
            "subscription_id",
            (
                _c("subscription_id"),
                _c("account_id"),
                _c("plan"),
                _c("status"),
                _c("seats", "int"),
                _c("mrr", "float"),
                _c("currency"),
                _c("started_on", "date"),
                _c("renews_on", "date", nullable=True),
                _c("canceled_on", "date", nullable=True),
                _c("updated_at", "timestamp"),
            ),
        ),
        Source(
            "support_tickets",
            "jsonl",
            "ticket_id",
            (
                _c("ticket_id"),
                _c("account_id"),
                _c("requester_email"),
                _c("subject"),
                _c("description"),
                _c("priority"),
                _c("status"),
                _c("channel"),
                _c("created_at", "timestamp"),
                _c("updated_at", "timestamp"),
            ),
        ),
    )
}

PARTITIONED_SOURCES: tuple[str, ...] = tuple(s for s, d in SOURCES.items() if d.partitioned)
MASTER_SOURCES: tuple[str, ...] = tuple(s for s, d in SOURCES.items() if not d.partitioned)

# Allowed values (HubSpot option values where the field is synced to a HubSpot enumeration).
INDUSTRIES: tuple[str, ...] = (
    "COMPUTER_SOFTWARE",
    "FINANCIAL_SERVICES",
    "HOSPITAL_HEALTH_CARE",
    "RETAIL",
    "INFORMATION_TECHNOLOGY_AND_SERVICES",
    "MARKETING_AND_ADVERTISING",
    "EDUCATION_MANAGEMENT",
    "LOGISTICS_AND_SUPPLY_CHAIN",
    "TELECOMMUNICATIONS",
    "CONSUMER_GOODS",
)
COUNTRIES: tuple[str, ...] = (
    "US", "GB", "DE", "FR", "NL", "SE", "CA", "AU", "JP", "CH", "ES", "IT", "IE", "DK", "NO",
    "FI", "BE", "AT", "PL", "BR", "MX", "IN", "SG", "NZ",
)  # fmt: skip
CURRENCIES: tuple[str, ...] = ("USD", "EUR", "GBP", "CAD", "AUD", "JPY", "CHF", "SEK", "NOK", "DKK")
ROLES: tuple[str, ...] = ("admin", "member", "viewer")
EVENT_TYPES: tuple[str, ...] = (
    "login",
    "feature_used",
    "report_exported",
    "api_call",
    "seat_invited",
)
INVOICE_STATUSES: tuple[str, ...] = ("draft", "open", "paid", "void", "uncollectible")
PLANS: tuple[str, ...] = ("starter", "growth", "scale", "enterprise")
SUBSCRIPTION_STATUSES: tuple[str, ...] = ("trialing", "active", "past_due", "canceled")
PRIORITIES: tuple[str, ...] = ("low", "medium", "high", "urgent")
TICKET_STATUSES: tuple[str, ...] = ("new", "open", "pending", "solved", "closed")
CHANNELS: tuple[str, ...] = ("email", "chat", "phone", "web")
