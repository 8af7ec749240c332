"""HubSpot's v3 request signature, checked the way HubSpot documents it.

``X-HubSpot-Signature-v3`` = base64(HMAC-SHA256(client secret, method + URI + raw body +
timestamp)), with ``X-HubSpot-Request-Timestamp`` in epoch milliseconds. The URI is the full URL
HubSpot called (scheme, host, path, query) after decoding exactly twelve percent-escapes;
everything else stays encoded as received. Requests older than five minutes are refused, and the
comparison is constant-time. (Public docs: developers.hubspot.com → "Validating requests".)
"""

from __future__ import annotations

import base64
import hashlib
import hmac

MAX_AGE_MS = 5 * 60 * 1000  # HubSpot: "Reject the request if the timestamp is older than 5 minutes"

# The only escapes HubSpot decodes before signing (the "?" starting the query is never encoded).
_DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


class SignatureRejected(Exception):
    """The request is not provably from HubSpot (or is too old); ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def signing_uri(uri: str) -> str:
    """``uri`` with HubSpot's twelve escapes decoded (case-insensitive hex), nothing else."""
    out: list[str] = []
    i = 0
    while i < len(uri):
        if uri[i] == "%" and uri[i : i + 3].upper() in _DECODED:
            out.append(_DECODED[uri[i : i + 3].upper()])
            i += 3
        else:
            out.append(uri[i])
            i += 1
    return "".join(out)


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp_ms: int | str) -> str:
    """The v3 signature HubSpot would send for this request."""
    message = (
        method.upper().encode() + signing_uri(uri).encode() + body + str(timestamp_ms).encode()
    )
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def verify_v3(
    secret: str,
    *,
    method: str,
    uri: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    now_ms: int,
    max_age_ms: int = MAX_AGE_MS,
) -> int:
    """Raise :class:`SignatureRejected` unless the request carries a valid, fresh v3 signature;
    return its timestamp (ms). A timestamp more than ``max_age_ms`` in the future is refused too
    (a skewed clock or a forged header)."""
    if not signature or not timestamp:
        raise SignatureRejected("missing_signature", "no X-HubSpot-Signature-v3 / timestamp")
    try:
        stamp = int(timestamp)
    except ValueError:
        raise SignatureRejected(
            "bad_timestamp", f"timestamp {timestamp[:20]!r} is not ms"
        ) from None
    if abs(now_ms - stamp) > max_age_ms:
        raise SignatureRejected(
            "stale_timestamp", f"timestamp is {(now_ms - stamp) / 1000:.0f} s from now (max 300 s)"
        )
    expected = sign_v3(secret, method, uri, body, stamp)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise SignatureRejected("bad_signature", "signature does not match")
    return stamp
