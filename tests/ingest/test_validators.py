"""Each kind of bad value fails the check a RevOps engineer would expect; fixes are not errors."""

import pandas as pd
import pytest

from spokesync.ingest.normalise import canonical_domain, normalise_email
from spokesync.ingest.validate import validate_chunk

DAY = "2026-01-05"
ACCOUNT = {
    "account_id": "ACC-000001",
    "name": "Acme",
    "domain": "acme.com",
    "industry": "RETAIL",
    "country": "US",
    "employee_count": "10",
    "owner_email": "sam@acme.com",
    "created_at": "2025-01-01T00:00:00Z",
    "updated_at": "2025-02-01T00:00:00Z",
}
SUBSCRIPTION = {
    "subscription_id": "SUB-1",
    "account_id": "ACC-000001",
    "plan": "growth",
    "status": "active",
    "seats": "3",
    "mrr": "75.00",
    "currency": "USD",
    "started_on": "2025-01-01",
    "renews_on": None,
    "canceled_on": None,
    "updated_at": "2026-01-05T09:00:00Z",
}
USAGE = {
    "event_id": "E1",
    "account_id": "ACC-000001",
    "user_id": "USR-0000001",
    "event_type": "login",
    "occurred_at": pd.Timestamp("2026-01-05T09:00:00Z").as_unit("us"),
    "quantity": 1,
}


def _frame(base: dict[str, object], **bad: object) -> pd.DataFrame:
    good = pd.DataFrame([base] * 3)
    for column, value in bad.items():
        good.loc[1, column] = value
    if isinstance(base["account_id"], str) and base is not USAGE:
        good = good.astype("str").where(good.notna(), None)
    return good


@pytest.mark.parametrize(
    ("source", "base", "column", "value", "check"),
    [
        ("accounts", ACCOUNT, "account_id", None, "not_nullable"),
        ("accounts", ACCOUNT, "industry", "SPACE_MINING", "isin"),
        ("accounts", ACCOUNT, "employee_count", "-1", "greater_than_or_equal_to"),
        ("accounts", ACCOUNT, "employee_count", "12.5", "parse_int"),
        ("accounts", ACCOUNT, "country", "usa", "str_matches"),
        ("accounts", ACCOUNT, "owner_email", "sam at acme", "valid_email"),
        # HubSpot answers INVALID_EMAIL for an unknown top-level domain: the same rule here.
        ("accounts", ACCOUNT, "owner_email", "bcooper@example.con", "valid_email"),
        ("accounts", ACCOUNT, "owner_email", "a..b@acme.com", "valid_email"),
        ("accounts", ACCOUNT, "created_at", "2025-13-45", "parse_timestamp"),
        ("accounts", ACCOUNT, "created_at", "1970-01-01T00:00:00Z", "greater_than_or_equal_to"),
        ("subscriptions", SUBSCRIPTION, "currency", "BTC", "isin"),
        ("subscriptions", SUBSCRIPTION, "mrr", "-1", "greater_than_or_equal_to"),
        ("subscriptions", SUBSCRIPTION, "seats", "0", "greater_than_or_equal_to"),
        ("subscriptions", SUBSCRIPTION, "started_on", "01/02/2025", "parse_date"),
        ("subscriptions", SUBSCRIPTION, "updated_at", "2026-01-09T00:00:00Z", "in_range"),
        ("product_usage", USAGE, "occurred_at", pd.Timestamp("2026-01-06T00:00:00Z"), "in_range"),
        ("product_usage", USAGE, "quantity", 0, "greater_than_or_equal_to"),
        ("product_usage", USAGE, "event_type", "logout", "isin"),
    ],
)
def test_bad_value_fails_exactly_its_row_with_the_expected_check(
    source: str, base: dict[str, object], column: str, value: object, check: str
) -> None:
    frame = _frame(base, **{column: value})
    if source == "product_usage":
        frame["quantity"] = frame["quantity"].astype("Int64")
        frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True).dt.as_unit("us")
        frame = frame.astype(
            {c: "str" for c in ("event_id", "account_id", "user_id", "event_type")}
        )
    result = validate_chunk(source, frame, DAY)
    assert result.valid.tolist() == [True, False, True]
    assert result.failures["pos"].tolist() == [1]
    (failure,) = result.failures_at(1)
    assert (failure["column"], failure["check"]) == (column, check)


def test_messy_emails_and_url_domains_are_fixed_not_quarantined() -> None:
    frame = _frame(ACCOUNT)
    frame.loc[0, "owner_email"] = "  Sam@ACME.com "
    frame.loc[2, "domain"] = "https://www.Acme.com/about"
    result = validate_chunk("accounts", frame, None)
    assert result.valid.tolist() == [True, True, True]
    assert result.normalised == 2
    assert result.frame["owner_email"].tolist() == ["sam@acme.com"] * 3
    assert result.frame["domain"].tolist() == ["acme.com"] * 3


@pytest.mark.parametrize(
    ("raw", "domain"),
    [
        ("https://www.Acme.com/about", "acme.com"),
        ("http://shop.acme.co.uk:8080/x?y=1", "shop.acme.co.uk"),
        ("WWW.ACME.IO.", "acme.io"),
        ("acme.com", "acme.com"),
    ],
)
def test_canonical_domain(raw: str, domain: str) -> None:
    assert canonical_domain(pd.Series([raw], dtype="str")).tolist() == [domain]


def test_normalise_email() -> None:
    got = normalise_email(pd.Series(["  Ada@Example.COM ", None], dtype="str"))
    assert got.iloc[0] == "ada@example.com" and pd.isna(got.iloc[1])
