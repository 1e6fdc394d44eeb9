"""The Face client's retry policy (pure; unit-tested): what is retried, and how long to wait.

429, 500/502/503/504 and 409 ``ConcurrentOperationConflict`` are retried, with exponential backoff and
"equal jitter", waiting at least what ``Retry-After`` (or ``retry-after-ms``) asks.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
TRANSIENT_CODES = frozenset({"ConcurrentOperationConflict"})


def parse_retry_after(headers: Mapping[str, str], *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``x-ms-retry-after-ms`` / ``Retry-After``
    (delta-seconds or an HTTP date). None when absent or unparseable; never negative."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        raw = lowered.get(name)
        if raw is not None:
            try:
                return max(0.0, float(raw.strip()) / 1000.0)
            except ValueError:
                pass
    raw = lowered.get("retry-after")
    if raw is None or not raw.strip():
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        import email.utils  # only for the rare HTTP-date form (keeps module import cheap)

        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - now())
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def is_retryable(status: int, code: str = "") -> bool:
    """429, 500/502/503/504, and 409 ConcurrentOperationConflict. No other 4xx is ever retried."""
    return status in RETRYABLE_STATUSES or (status == 409 and code in TRANSIENT_CODES)


def backoff_seconds(attempt: int, *, initial: float, maximum: float, retry_after: float | None,
                    max_wait: float, rng: Callable[[float, float], float] = random.uniform) -> float:
    """Wait before retry number ``attempt`` (1-based): exponential backoff with "equal jitter"
    (half fixed, half random, so never an immediate retry), at least ``retry_after``, at most ``max_wait``."""
    exp = min(maximum, initial * (2 ** max(0, attempt - 1)))
    backoff = exp / 2 + float(rng(0.0, exp / 2))
    return float(min(max_wait, max(backoff, retry_after or 0.0)))
