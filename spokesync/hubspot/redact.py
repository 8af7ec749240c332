"""Keep personal data and secrets out of logs: email masking and token scrubbing."""

from __future__ import annotations

import logging
import re

_EMAIL = re.compile(r"([A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]*@([A-Za-z0-9.\-]+\.[A-Za-z]{2,})")
# Bearer tokens and HubSpot private-app / service-key tokens, wherever they appear.
_TOKEN_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[^\s'\"]+"),
    re.compile(r"\bpat-[A-Za-z0-9-]+"),
)

_secrets: set[str] = set()
# HubSpot's tokens are tens of characters (``pat-na1-`` and a UUID). A shorter string cannot be
# one, and replacing it everywhere would mangle every message: a test client's token "t" once
# turned an alert's "contacts" into "con***ac***s" for every later caller in the process.
MIN_SECRET_LENGTH = 8

# HubSpot properties that hold personal data: their values are masked wherever spokesync shows
# values (plan previews, Dagster metadata), as emails are in logs.
PERSONAL_PROPERTIES = frozenset(
    {
        "email",
        "work_email",
        "firstname",
        "lastname",
        "phone",
        "mobilephone",
        "fax",
        "address",
        "city",
        "zip",
        "date_of_birth",
        "ip_city",
        "hs_ip_timezone",
        "linkedinbio",
        "twitterhandle",
    }
)


def is_personal(prop: str) -> bool:
    """Whether a HubSpot property holds personal data (its values are masked when shown)."""
    return prop in PERSONAL_PROPERTIES or prop.endswith(("_email", "_phone"))


def mask_value(prop: str, value: str | None) -> str | None:
    """A value as it may be shown: personal properties keep only a first character (emails
    their domain too); others pass through :func:`mask_email`."""
    if value is None or value == "":
        return value
    if "@" in value:
        return mask_email(value)
    if is_personal(prop):
        return value[0] + "***"
    return value


def mask_email(value: str) -> str:
    """``jane.doe@acme.com`` → ``j***@acme.com``; anything that is not an email is returned as is."""
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", value)


def register_secret(secret: str) -> None:
    """Remember a secret (the access token) so :func:`redact` removes it from any text; strings
    shorter than ``MIN_SECRET_LENGTH`` are not tokens and are ignored."""
    if len(secret) >= MIN_SECRET_LENGTH:
        _secrets.add(secret)


def redact(text: object) -> str:
    """Mask emails and remove tokens from text bound for a log, an exception or a table."""
    out = str(text)
    for secret in _secrets:
        out = out.replace(secret, "***")
    for pattern in _TOKEN_PATTERNS:
        out = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "***", out)
    return mask_email(out)


class RedactingFilter(logging.Filter):
    """A logging filter that applies :func:`redact` to the formatted message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def get_logger(name: str) -> logging.Logger:
    """A logger whose records are always redacted (the filter is attached once)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    return logger
