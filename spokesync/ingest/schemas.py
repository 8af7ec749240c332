"""pandera models: the value checks per source, on frames already parsed to their types.

Types come from :mod:`spokesync.ingest.contract`; a value that cannot be parsed to its type is
reported by the parse step before these run. Keys are non-nullable here; duplicate keys are
handled after validation (first valid row wins, see ``docs/ingestion.md``).
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing.pandas import Series

from spokesync.ingest.contract import (
    CHANNELS,
    CURRENCIES,
    EVENT_TYPES,
    INDUSTRIES,
    INVOICE_STATUSES,
    PLANS,
    PRIORITIES,
    ROLES,
    SUBSCRIPTION_STATUSES,
    TICKET_STATUSES,
)

EMAIL = r"^[a-z0-9._%+'\-]+@[a-z0-9\-]+(\.[a-z0-9\-]+)*\.[a-z]{2,}$"
DOMAIN = r"^[a-z0-9\-]+(\.[a-z0-9\-]+)*\.[a-z]{2,}$"
EARLIEST = pd.Timestamp("2000-01-01", tz="UTC")
TS = {"dtype_kwargs": {"unit": "us", "tz": "UTC"}}
Timestamp = pd.DatetimeTZDtype
Date = "datetime64[us]"


class _Base(pa.DataFrameModel):
    class Config:
        strict = False  # extra columns are dropped (and reported) before validation
        coerce = False  # types are parsed beforehand, with row-level parse errors


class Accounts(_Base):
    account_id: Series[str] = pa.Field(str_matches=r"^ACC-\d+$")
    name: Series[str] = pa.Field(str_length={"min_value": 1})
    domain: Series[str] = pa.Field(str_matches=DOMAIN)
    industry: Series[str] = pa.Field(isin=list(INDUSTRIES))
    country: Series[str] = pa.Field(str_matches=r"^[A-Z]{2}$")
    employee_count: Series[pd.Int64Dtype] = pa.Field(ge=0)
    owner_email: Series[str] = pa.Field(str_matches=EMAIL)
    created_at: Series[Timestamp] = pa.Field(ge=EARLIEST, **TS)
    updated_at: Series[Timestamp] = pa.Field(ge=EARLIEST, **TS)


class Users(_Base):
    user_id: Series[str] = pa.Field(str_matches=r"^USR-\d+$")
    account_id: Series[str] = pa.Field(str_matches=r"^ACC-\d+$")
    email: Series[str] = pa.Field(str_matches=EMAIL)
    first_name: Series[str]
    last_name: Series[str]
    job_title: Series[str] = pa.Field(nullable=True)
    role: Series[str] = pa.Field(isin=list(ROLES))
    created_at: Series[Timestamp] = pa.Field(ge=EARLIEST, **TS)
    updated_at: Series[Timestamp] = pa.Field(ge=EARLIEST, **TS)


class ProductUsage(_Base):
    # ids are only required here (no format regex): this is the 10M-rows-a-day table.
    event_id: Series[str]
    account_id: Series[str]
    user_id: Series[str]
    event_type: Series[str] = pa.Field(isin=list(EVENT_TYPES))
    occurred_at: Series[Timestamp] = pa.Field(**TS)  # within the day: see schema_for()
    quantity: Series[pd.Int64Dtype] = pa.Field(ge=1)


class Invoices(_Base):
    invoice_id: Series[str]
    account_id: Series[str] = pa.Field(str_matches=r"^ACC-\d+$")
    subscription_id: Series[str]
    invoice_date: Series[Date]  # not after the partition day + 31 days: see schema_for()
    due_date: Series[Date]
    amount: Series[float] = pa.Field(ge=0)
    currency: Series[str] = pa.Field(isin=list(CURRENCIES))
    status: Series[str] = pa.Field(isin=list(INVOICE_STATUSES))
    paid_at: Series[Timestamp] = pa.Field(nullable=True, ge=EARLIEST, **TS)


class Subscriptions(_Base):
    subscription_id: Series[str]
    account_id: Series[str] = pa.Field(str_matches=r"^ACC-\d+$")
    plan: Series[str] = pa.Field(isin=list(PLANS))
    status: Series[str] = pa.Field(isin=list(SUBSCRIPTION_STATUSES))
    seats: Series[pd.Int64Dtype] = pa.Field(ge=1)
    mrr: Series[float] = pa.Field(ge=0)
    currency: Series[str] = pa.Field(isin=list(CURRENCIES))
    started_on: Series[Date]
    renews_on: Series[Date] = pa.Field(nullable=True)
    canceled_on: Series[Date] = pa.Field(nullable=True)
    updated_at: Series[Timestamp] = pa.Field(ge=EARLIEST, **TS)


class SupportTickets(_Base):
    ticket_id: Series[str]
    account_id: Series[str] = pa.Field(str_matches=r"^ACC-\d+$")
    requester_email: Series[str] = pa.Field(str_matches=EMAIL)
    subject: Series[str]
    description: Series[str] = pa.Field(nullable=True)
    priority: Series[str] = pa.Field(isin=list(PRIORITIES))
    status: Series[str] = pa.Field(isin=list(TICKET_STATUSES))
    channel: Series[str] = pa.Field(isin=list(CHANNELS))
    created_at: Series[Timestamp] = pa.Field(ge=EARLIEST, **TS)
    updated_at: Series[Timestamp] = pa.Field(ge=EARLIEST, **TS)


MODELS: dict[str, type[_Base]] = {
    "accounts": Accounts,
    "users": Users,
    "product_usage": ProductUsage,
    "invoices": Invoices,
    "subscriptions": Subscriptions,
    "support_tickets": SupportTickets,
}


def schema_for(source: str, day: str | None) -> pa.DataFrameSchema:
    """The source's schema, with the date-range checks that depend on the partition day."""
    schema = MODELS[source].to_schema()
    if day is None:
        return schema
    start = pd.Timestamp(day, tz="UTC")
    end = start + pd.Timedelta(days=1)
    horizon = (start + pd.Timedelta(days=31)).tz_localize(None)
    if source == "product_usage":
        in_day = pa.Check.in_range(start, end, include_max=False)
        schema = schema.update_column("occurred_at", checks=[in_day])
    elif source == "invoices":
        in_range = pa.Check.in_range(EARLIEST.tz_localize(None), horizon)
        schema = schema.update_column("invoice_date", checks=[in_range])
    elif source in ("support_tickets", "subscriptions"):
        not_future = pa.Check.in_range(EARLIEST, end)
        column = "created_at" if source == "support_tickets" else "updated_at"
        schema = schema.update_column(column, checks=[not_future])
    return schema
