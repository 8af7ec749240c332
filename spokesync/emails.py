"""Email addresses as HubSpot accepts them on contacts (one rule for the sandbox and ingest).

HubSpot rejects malformed addresses and also well-formed ones whose top-level domain does not
exist: ``bcooper@example.con`` and ``x@wales.nhs.ik`` answer 400 ``INVALID_EMAIL`` (recorded
responses, see docs/sandbox.md). HubSpot does not publish its list, so the top-level domain is
checked against the ICANN section of the Public Suffix List shipped in the ``publicsuffixlist``
package (no network). Reserved names (``.test``, ``.example``, ``.invalid``, ``.local``) are not
ICANN top-level domains and are rejected too; no capture shows HubSpot accepting them.
"""

from __future__ import annotations

import functools
import re
from typing import Any

_LOCAL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
MAX_LOCAL = 64
MAX_DOMAIN = 253


@functools.cache
def _suffixes() -> Any:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList(only_icann=True)


def normalise_email(value: Any) -> str:
    """Trimmed and lowercased, as HubSpot stores contact emails (no validation)."""
    return "" if value is None else str(value).strip().lower()


@functools.lru_cache(maxsize=4096)
def is_known_tld(tld: str) -> bool:
    """``com``, ``co``, ``xn--p1ai`` … (an ICANN top-level domain); ``con``, ``ik`` are not."""
    tld = tld.strip().lower().rstrip(".")
    if not tld or "." in tld:
        return False
    return _suffixes().publicsuffix(f"x.{tld}", accept_unknown=False) is not None


def email_problem(value: Any) -> str | None:
    """Why HubSpot would reject ``value`` as a contact email (None: it is valid). The check is
    on the trimmed, lowercased address, which is what HubSpot stores."""
    email = normalise_email(value)
    if not email:
        return "empty"
    local, at, domain = email.rpartition("@")
    if not at or not local:
        return "no local part and @"
    if "@" in local:
        return "more than one @"
    if len(local) > MAX_LOCAL or not _LOCAL.match(local):
        return "invalid local part"
    if not domain or len(domain) > MAX_DOMAIN:
        return "invalid domain"
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return "invalid domain"
    if not is_known_tld(labels[-1]):
        return f"unknown top-level domain .{labels[-1]}"
    return None


def is_valid_email(value: Any) -> bool:
    return email_problem(value) is None


def invalid_email_message(value: Any) -> str:
    """HubSpot's message: ``Email address bcooper@example.con is invalid`` (input trimmed)."""
    return f"Email address {'' if value is None else str(value).strip()} is invalid"
