"""The source contract: the one definition of every landing column.

Per source: its columns (logical type, nullability, value rules and what the column means),
its key, its ``updated_at`` column (which row of a duplicated key wins), its landing format and
the text tokens that mean "no value". Everything else follows from this module:

- the readers and the type-parsing step (:mod:`spokesync.ingest.validate`),
- the pandera schema (:func:`spokesync.ingest.schemas.schema_for` builds it from here),
- the warehouse Parquet schema (:meth:`Source.arrow_schema`),
- the column tables of ``docs/sources.md`` (:func:`spokesync.ingest.contract_docs.render`;
  a test fails when the page and this module disagree).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

Kind = Literal["str", "int", "decimal", "timestamp", "date"]
Format = Literal["parquet", "csv", "jsonl"]
# Day-dependent ranges, checked per partition (see schemas.schema_for).
Window = Literal["in_day", "not_after_day_end", "not_after_day_plus_31"]

# Money and other exact quantities: 38 significant digits, 9 after the point. A value with
# more decimals or more integer digits is quarantined, never rounded.
DECIMAL_PRECISION = 38
DECIMAL_SCALE = 9
EARLIEST = "2000-01-01"

ARROW_TYPES: dict[str, pa.DataType] = {
    "str": pa.string(),
    "int": pa.int64(),
    "decimal": pa.decimal128(DECIMAL_PRECISION, DECIMAL_SCALE),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
}
DEFAULT_NULL_TOKENS: tuple[str, ...] = ("",)
NULL_TOKENS_ENV = "SPOKESYNC_NULL_TOKENS_"  # + SOURCE (upper case): a JSON list of strings


@dataclass(frozen=True, slots=True)
class Column:
    """One column. ``identifier``: a key or a reference to another source's key; trimmed of
    Unicode whitespace on ingest so ``SUB-1`` and ``SUB-1 `` are one key in every table."""

    name: str
    kind: Kind = "str"
    nullable: bool = False
    doc: str = ""
    identifier: bool = False
    # The whole value must match (pandera's str_matches check, full-match); ASCII classes
    # only (``[0-9]``, never ``\d``), so Python's re and DuckDB's RE2 read it the same.
    pattern: str | None = None
    pattern_doc: str | None = None  # the pattern for people
    allowed: tuple[str, ...] | None = None  # pandera isin
    minimum: int | None = None  # pandera ge
    earliest: bool = False  # >= 2000-01-01
    window: Window | None = None
    normalise: Literal["email", "domain"] | None = None

    @property
    def arrow_type(self) -> pa.DataType:
        return ARROW_TYPES[self.kind]


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    format: Format
    key: str
    columns: tuple[Column, ...]
    partitioned: bool = True
    updated_at: str | None = None  # the newest row of a key wins; None: the first row wins
    null_tokens: tuple[str, ...] = DEFAULT_NULL_TOKENS
    doc: str = ""

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if not c.nullable]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def arrow_schema(self) -> pa.Schema:
        """The warehouse Parquet schema (stable across partitions)."""
        return pa.schema(
            [pa.field(c.name, c.arrow_type, nullable=c.nullable) for c in self.columns]
        )


def null_tokens(source: str, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The text values read as "no value" for ``source`` (CSV fields; JSONL strings stay
    values, only JSON ``null`` and a missing key are nulls). Default: the empty field only.
    ``SPOKESYNC_NULL_TOKENS_<SOURCE>='["", "N/A"]'`` overrides it for one source."""
    env = os.environ if environ is None else environ
    raw = env.get(NULL_TOKENS_ENV + source.upper())
    if raw is None:
        return SOURCES[source].null_tokens
    try:
        tokens = json.loads(raw)
    except ValueError as e:
        raise ValueError(
            f"{NULL_TOKENS_ENV}{source.upper()} must be a JSON list of strings, e.g. "
            f'\'["", "N/A"]\': {e}'
        ) from None
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise ValueError(
            f"{NULL_TOKENS_ENV}{source.upper()} must be a JSON list of strings, not {raw!r}"
        )
    return tuple(tokens)


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

EMAIL_DOC = "an address HubSpot accepts (`local@domain.tld`, a real top-level domain)"
DOMAIN = r"^[a-z0-9\-]+(\.[a-z0-9\-]+)*\.[a-z]{2,}$"
ACCOUNT_ID = r"^ACC-[0-9]+$"


def _id(name: str, doc: str = "", pattern: str | None = None, shown: str | None = None) -> Column:
    return Column(name, doc=doc, identifier=True, pattern=pattern, pattern_doc=shown)


def _account_ref(doc: str = "the account (`ACC-…`)") -> Column:
    return _id("account_id", doc, ACCOUNT_ID, "`ACC-` + digits")


def _email(name: str, doc: str) -> Column:
    """An email column: normalised, then checked with the rule HubSpot applies to contact
    emails (:func:`spokesync.emails.is_valid_email`; check ``valid_email``)."""
    return Column(name, doc=doc, pattern_doc=EMAIL_DOC, normalise="email")


def _enum(name: str, allowed: tuple[str, ...], doc: str = "") -> Column:
    return Column(name, doc=doc, allowed=allowed)


def _ts(name: str, doc: str = "", **kw: object) -> Column:
    return Column(name, "timestamp", doc=doc, earliest=True, **kw)  # type: ignore[arg-type]


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            "accounts",
            "csv",
            "account_id",
            (
                _id(
                    "account_id",
                    "the company's external id in HubSpot, e.g. `ACC-000123`",
                    ACCOUNT_ID,
                    "`ACC-` + digits",
                ),
                Column("name", doc="company name"),
                Column(
                    "domain",
                    doc="bare lowercase domain (`acme.com`); URLs like "
                    "`https://www.Acme.com/about` are reduced to it",
                    pattern=DOMAIN,
                    pattern_doc="a bare domain",
                    normalise="domain",
                ),
                _enum("industry", INDUSTRIES, "a HubSpot industry option value"),
                Column(
                    "country",
                    doc="ISO-3166 alpha-2, upper case (`US`, `DE`, `NA`)",
                    pattern=r"^[A-Z]{2}$",
                    pattern_doc="two upper-case letters",
                ),
                Column("employee_count", "int", minimum=0, doc="head count the account reported"),
                _email("owner_email", "account owner's email; trimmed and lowercased"),
                _ts("created_at", "when the account was created in the product"),
                _ts("updated_at", "the newest row of a duplicated `account_id` wins"),
            ),
            partitioned=False,
            updated_at="updated_at",
        ),
        Source(
            "firmographics",
            "csv",
            "domain",
            (
                Column(
                    "domain",
                    doc="the company's bare domain: the enrichment provider's match key",
                    pattern=DOMAIN,
                    pattern_doc="a bare domain",
                    normalise="domain",
                    identifier=True,
                ),
                Column("company_name", doc="the provider's company name"),
                Column(
                    "industry_label",
                    doc="the provider's own industry words (`Software`, `Banking & Finance`); "
                    "mappings standardise them to a controlled vocabulary",
                ),
                Column("employees", "int", nullable=True, minimum=0, doc="head count"),
                Column(
                    "hq_country",
                    nullable=True,
                    doc="ISO-3166 alpha-2 of the headquarters",
                    pattern=r"^[A-Z]{2}$",
                    pattern_doc="two upper-case letters",
                ),
                _ts("updated_at", "the newest row of a duplicated `domain` wins"),
            ),
            partitioned=False,
            updated_at="updated_at",
            doc="An enrichment provider's export (stands in for Clearbit/ZoomInfo-style data): "
            "one row per company domain it knows; not every account's domain is known.",
        ),
        Source(
            "users",
            "csv",
            "user_id",
            (
                _id("user_id", "e.g. `USR-0000123`", r"^USR-[0-9]+$", "`USR-` + digits"),
                _account_ref("the user's account (`ACC-…`)"),
                _email("email", "trimmed and lowercased; the contact's key in HubSpot"),
                Column("first_name", doc="the person's given name"),
                Column("last_name", doc="the person's family name"),
                Column("job_title", nullable=True, doc="as the person entered it"),
                _enum("role", ROLES, "the user's role in the product"),
                _ts("created_at", "when the user signed up"),
                _ts("updated_at", "the newest row of a duplicated `user_id` (or email) wins"),
            ),
            partitioned=False,
            updated_at="updated_at",
        ),
        Source(
            "product_usage",
            "parquet",
            "event_id",
            (
                # ids are only required here (no format regex): the 10M-rows-a-day table.
                _id("event_id", "unique per event"),
                _id("account_id", "who did it"),
                _id("user_id", "who did it"),
                _enum("event_type", EVENT_TYPES, "what the user did"),
                Column(
                    "occurred_at",
                    "timestamp",
                    doc="within the partition day (UTC, `[D 00:00, D+1 00:00)`)",
                    window="in_day",
                ),
                Column(
                    "quantity", "int", minimum=1, doc="how many times (e.g. API calls in the event)"
                ),
            ),
        ),
        Source(
            "invoices",
            "csv",
            "invoice_id",
            (
                _id("invoice_id", "the billing system's invoice number"),
                _account_ref(),
                _id("subscription_id", "the subscription billed"),
                Column(
                    "invoice_date",
                    "date",
                    doc="not after the partition day + 31 days, not before 2000",
                    window="not_after_day_plus_31",
                ),
                Column("due_date", "date", doc="when payment is due"),
                Column("amount", "decimal", doc="in `currency`, exact", minimum=0),
                _enum("currency", CURRENCIES, "ISO-4217"),
                _enum("status", INVOICE_STATUSES, "the invoice's state in billing"),
                _ts("paid_at", "when it was paid; empty while unpaid", nullable=True),
            ),
        ),
        Source(
            "subscriptions",
            "csv",
            "subscription_id",
            (
                _id("subscription_id", "the billing system's subscription id"),
                _account_ref(),
                _enum("plan", PLANS, "the plan subscribed to"),
                _enum("status", SUBSCRIPTION_STATUSES, "the subscription's state in billing"),
                Column("seats", "int", minimum=1, doc="seats paid for"),
                Column(
                    "mrr",
                    "decimal",
                    doc="monthly recurring revenue in `currency`, exact",
                    minimum=0,
                ),
                _enum("currency", CURRENCIES, "as for invoices"),
                Column("started_on", "date", doc="first day of the subscription"),
                Column("renews_on", "date", nullable=True, doc="next renewal; empty if none"),
                Column(
                    "canceled_on", "date", nullable=True, doc="when it was canceled; else empty"
                ),
                _ts(
                    "updated_at",
                    "not after the end of the partition day; the newest row of a duplicated "
                    "`subscription_id` wins",
                    window="not_after_day_end",
                ),
            ),
            updated_at="updated_at",
            doc="A daily export of the subscriptions that changed that day: a subscription "
            "re-appears on every day it changes (renewal, seats, cancellation); the latest "
            "partition holds its current state.",
        ),
        Source(
            "support_tickets",
            "jsonl",
            "ticket_id",
            (
                _id("ticket_id", "the help desk's ticket id"),
                _account_ref(),
                _email("requester_email", "trimmed, lowercased, valid email"),
                Column("subject", doc="the ticket's subject line"),
                Column("description", nullable=True, doc="free text; often empty in exports"),
                _enum("priority", PRIORITIES, "as triaged in the help desk"),
                _enum("status", TICKET_STATUSES, "the ticket's state in the help desk"),
                _enum("channel", CHANNELS, "how the customer reached support"),
                _ts(
                    "created_at",
                    "not after the end of the partition day",
                    window="not_after_day_end",
                ),
                _ts("updated_at", "the newest row of a duplicated `ticket_id` wins"),
            ),
            updated_at="updated_at",
        ),
    )
}

PARTITIONED_SOURCES: tuple[str, ...] = tuple(s for s, d in SOURCES.items() if d.partitioned)
MASTER_SOURCES: tuple[str, ...] = tuple(s for s, d in SOURCES.items() if not d.partitioned)
