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
import os
import re
from typing import Any

# Whole-string rules (``fullmatch``: a ``$`` would also accept a trailing newline). The same
# rules are written for RE2 in ``LOCAL_RE`` / ``LABEL_RE`` (the ingest's DuckDB check).
LOCAL_RE = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
LABEL_RE = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_LOCAL = re.compile(LOCAL_RE)
_LABEL = re.compile(LABEL_RE)
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


@functools.cache
def known_tlds() -> frozenset[str]:
    """Every ASCII top-level domain :func:`is_known_tld` accepts (for set-wise checks, e.g. in
    SQL). A top-level domain is known only through a rule of the list, so the candidates are
    the last labels of its ICANN rules (internationalised ones in ``xn--`` form too); each is
    confirmed with :func:`is_known_tld`."""
    import publicsuffixlist

    path = os.path.join(os.path.dirname(publicsuffixlist.__file__), "public_suffix_list.dat")
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    icann = text.split("===BEGIN ICANN DOMAINS===")[1].split("===END ICANN DOMAINS===")[0]
    candidates = {
        line.split()[0].lstrip("!").split(".")[-1].lower()
        for line in icann.splitlines()
        if line.strip() and not line.lstrip().startswith("//")
    }
    for label in list(candidates):  # internationalised ones also in their ASCII form
        if not label.isascii():
            try:
                candidates.add(label.encode("idna").decode("ascii"))
            except UnicodeError:
                candidates.add("xn--" + label.encode("punycode").decode("ascii"))
    return frozenset(t for t in candidates if t.isascii() and is_known_tld(t))


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
    if len(local) > MAX_LOCAL or not _LOCAL.fullmatch(local):
        return "invalid local part"
    if not domain or len(domain) > MAX_DOMAIN:
        return "invalid domain"
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        return "invalid domain"
    if not is_known_tld(labels[-1]):
        return f"unknown top-level domain .{labels[-1]}"
    return None


def is_valid_email(value: Any) -> bool:
    return email_problem(value) is None


def invalid_email_message(value: Any) -> str:
    """HubSpot's message: ``Email address bcooper@example.con is invalid`` (input trimmed)."""
    return f"Email address {'' if value is None else str(value).strip()} is invalid"
