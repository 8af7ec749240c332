"""When and how long to wait before trying a request again.

- 5xx, 423 and Cloudflare's 52x, and transport errors (connect errors, timeouts, dropped
  connections): exponential backoff with *full jitter* — ``uniform(0, min(cap, base·2^(n-1)))``
  — for at most ``max_attempts`` attempts. ``batch/upsert`` is idempotent, so retrying a batch
  that may already have been committed is safe.
- 429: ``Retry-After`` when present (read as seconds, the HTTP meaning, which HubSpot documents
  for 477; HubSpot does not document it for REST 429s), else by ``policyName``:
  ``TEN_SECONDLY_ROLLING`` waits for the window to roll, ``SECONDLY`` and search (no policy)
  ~1 s, ``DAILY`` is not retried at all.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from spokesync.hubspot.errors import RETRYABLE_STATUSES


@dataclass
class RetryPolicy:
    """Attempt caps and backoff parameters. ``rng`` is injectable for deterministic tests."""

    max_attempts: int = 6  # transient failures (5xx/423/52x/transport), first try included
    max_rate_limited: int = 8  # 429s tolerated for one request before giving up
    base_s: float = 0.5
    cap_s: float = 30.0
    locked_min_s: float = 2.0  # HubSpot: wait at least 2 s after a 423
    secondly_wait_s: float = 1.0
    rng: random.Random = field(default_factory=random.Random)

    def is_retryable_status(self, status_code: int) -> bool:
        return status_code in RETRYABLE_STATUSES

    def backoff_s(self, attempt: int, status_code: int | None = None) -> float:
        """Full-jitter delay after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.cap_s, self.base_s * 2 ** (attempt - 1))
        delay = self.rng.uniform(0, ceiling)
        if status_code == 423:
            delay = max(delay, self.locked_min_s)
        return delay

    def rate_limit_wait_s(
        self, policy_name: str | None, retry_after_s: float | None, window_s: float
    ) -> float:
        """How long every request should hold after a 429 (DAILY is handled by the caller)."""
        if retry_after_s is not None:
            return retry_after_s
        if policy_name == "TEN_SECONDLY_ROLLING":
            return window_s
        return self.secondly_wait_s


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date; ``None`` if absent/bad."""
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
        return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())
    except (TypeError, ValueError):
        return None
