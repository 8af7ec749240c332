"""Property value rules: what HubSpot stores for each type, and its error codes and messages."""

from __future__ import annotations

import pytest

from spokesync.sandbox.catalog import DEFAULT_PROPERTIES, Option, PropertyDef
from spokesync.sandbox.errors import PropertyError
from spokesync.sandbox.validation import normalize_value

DATE = PropertyDef("renewal_date", "Renewal", "date", "date", "g")
DATETIME = PropertyDef("seen_at", "Seen", "datetime", "date", "g")
NUMBER = PropertyDef("seats", "Seats", "number", "number", "g")
BOOL = PropertyDef("is_paying", "Paying", "bool", "booleancheckbox", "g")
MULTI = PropertyDef(
    "roles",
    "Roles",
    "enumeration",
    "checkbox",
    "g",
    options=[Option("Budget holder", "BUDGET_HOLDER", 0), Option("End user", "END_USER", 1)],
)
INDUSTRY = next(p for p in DEFAULT_PROPERTIES["0-2"] if p.name == "industry")
EMAIL = next(p for p in DEFAULT_PROPERTIES["0-1"] if p.name == "email")


def _error(prop: PropertyDef, value: object, **kw: object) -> PropertyError:
    with pytest.raises(PropertyError) as info:
        normalize_value(prop, value, **kw)
    return info.value


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("2015-05-01", "2015-05-01"),
        ("1430438400000", "2015-05-01"),
        (1430438400000, "2015-05-01"),
        ("2015-05-01T00:00:00.000Z", "2015-05-01"),
    ],
)
def test_date_accepts_midnight_utc_and_returns_iso_date(value: object, stored: str) -> None:
    assert normalize_value(DATE, value) == stored


def test_date_not_at_midnight_gives_hubspots_message() -> None:
    err = _error(DATE, "1635535865")
    assert (err.code, err.message) == (
        "INVALID_DATE",
        "1635535865 is at 22:18:55.865 UTC, not midnight!",
    )
    assert _error(DATE, "2015-05-01T10:00:00Z").message == (
        "2015-05-01T10:00:00Z is at 10:00:00.000 UTC, not midnight!"
    )
    assert _error(DATE, "05/01/2015").code == "INVALID_DATE"


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("2020-02-29T03:30:17Z", "2020-02-29T03:30:17.000Z"),
        ("2020-02-29T05:30:17.5+02:00", "2020-02-29T03:30:17.500Z"),
        ("1582947017000", "2020-02-29T03:30:17.000Z"),
        ("2020-02-29", "2020-02-29T00:00:00.000Z"),
    ],
)
def test_datetime_is_returned_as_utc_with_milliseconds(value: str, stored: str) -> None:
    assert normalize_value(DATETIME, value) == stored


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("10.50", "10.5"),
        ("1000.00", "1000"),
        ("-3", "-3"),
        (12, "12"),
        (2.5, "2.5"),
        ("007", "7"),
        ("0.0", "0"),
    ],
)
def test_number_is_stored_without_trailing_zeros(value: object, stored: str) -> None:
    assert normalize_value(NUMBER, value) == stored


def test_number_errors_use_hubspots_codes() -> None:
    assert (_error(NUMBER, "1/1/1").code, _error(NUMBER, "1/1/1").message) == (
        "INVALID_LONG",
        "1/1/1 was not a valid long.",
    )
    assert _error(NUMBER, "$1,234.50").code == "INVALID_INTEGER"
    assert _error(NUMBER, "1e3").code == "INVALID_LONG"


def test_enumeration_requires_option_value_not_label() -> None:
    assert normalize_value(INDUSTRY, "COMPUTER_SOFTWARE") == "COMPUTER_SOFTWARE"
    err = _error(INDUSTRY, "Computer Software")
    assert err.code == "INVALID_OPTION"
    assert err.message.startswith(
        'Computer Software was not one of the allowed options: [label: "Accounting"\n'
        'value: "ACCOUNTING"\ndisplay_order: 0\nhidden: false\nread_only: false\n, label: '
    )


def test_multi_select_joins_with_semicolon_and_leading_semicolon_appends() -> None:
    assert normalize_value(MULTI, "END_USER;BUDGET_HOLDER") == "END_USER;BUDGET_HOLDER"
    assert normalize_value(MULTI, ";BUDGET_HOLDER", existing="END_USER") == "END_USER;BUDGET_HOLDER"
    assert normalize_value(MULTI, "BUDGET_HOLDER", existing="END_USER") == "BUDGET_HOLDER"
    assert _error(MULTI, "END_USER;CEO").message.startswith(
        "CEO was not one of the allowed options"
    )


def test_bool_accepts_true_false_only() -> None:
    assert normalize_value(BOOL, "TRUE") == "true"
    assert normalize_value(BOOL, False) == "false"
    err = _error(BOOL, "yes")
    assert err.code == "INVALID_OPTION" and 'value: "true"' in err.message


def test_email_is_lowercased_and_validated() -> None:
    assert normalize_value(EMAIL, " Ann@Example.COM ", is_email=True) == "ann@example.com"
    err = _error(EMAIL, "not-an-email", is_email=True)
    assert (err.code, err.message) == ("INVALID_EMAIL", "Email address not-an-email is invalid")


def test_empty_string_clears_for_every_type() -> None:
    for prop in (DATE, DATETIME, NUMBER, BOOL, MULTI, INDUSTRY):
        assert normalize_value(prop, "") == ""
