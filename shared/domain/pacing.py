"""The Face call budget of one process: a token bucket shared by every worker thread.

Re-enrollment used to pace itself with a fixed schedule only: work item i was scheduled at the time
the calls of the items before it were paid for. Every millisecond an item started late (bus polling,
storage round trips, a busy thread) was lost for good, because the next item still waited for its own
fixed time; the achieved rate drifted to 0.75 of the limit. Now the dispatcher releases work a little
ahead of the budget and each Face call a worker makes takes a token from this bucket first:

- tokens accrue at ``rate`` per second up to ``burst``; a call that finds no token waits for the next
  one, so the calls of all workers together never exceed ``rate`` for longer than the burst;
- a slow item leaves its tokens in the bucket and the next call of any worker spends them (up to the
  burst): lateness is made up for instead of accumulating;
- a 429 seen anywhere in the process (``hold_off``) empties the bucket and stops every worker until
  ``Retry-After`` has passed, not just the one that was throttled;
- and it lowers the process's rate (to ``DECREASE`` of what it was, once per hold-off), which then
  climbs back to the configured rate by ``RECOVERY`` of it per second. A 429 means someone else spends
  the same Face budget: another instance of the app, scaled out, each with a bucket of its own, or
  another caller. Instances that know nothing of each other so settle on shares that add up to about
  the limit (additive increase, multiplicative decrease, as TCP shares a link). One instance alone
  never sees a 429 from its own calls, and keeps the configured rate.

Pure and deterministic given ``clock`` and ``sleep`` (tests pass a clock they move).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: On a 429, the rate drops to this share of what it was (once per hold-off, however many calls were throttled).
DECREASE = 0.7
#: Then it climbs back by this share of the configured rate per second (from 0.7 back to 1 in 60 s).
RECOVERY = 0.005
#: It never drops below this share of the configured rate (a burst of 429s must not stall the run).
FLOOR = 0.1


class TokenBucket:
    def __init__(self, rate: float, *, burst: float | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.ceiling = float(rate)  # the configured rate (FACE_CALLS_PER_SECOND)
        self.rate = self.ceiling  # the rate now: lower for a while after a 429
        # Half a second of calls by default: Face's own limiter allows about one second of burst, and
        # other callers (enrollment) share it, so the bucket must not spend all of it at once.
        self.burst = float(burst) if burst is not None else max(1.0, self.rate / 2)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._stamp = clock()
        self._not_before = self._stamp
        self._lowered_until = self._stamp  # the 429s of one hold-off lower the rate once
        self.granted = 0
        self.waited = 0.0
        self.hold_offs = 0

    def _refill(self, now: float) -> None:
        start = max(self._stamp, self._not_before)  # nothing accrues while held off
        if now > start:
            self._tokens = min(self.burst, self._tokens + (now - start) * self.rate)
            if self.rate < self.ceiling:
                self.rate = min(self.ceiling, self.rate + (now - start) * self.ceiling * RECOVERY)
        self._stamp = max(self._stamp, now)

    def try_take(self, tokens: float = 1.0) -> float:
        """Takes ``tokens`` and returns 0, or returns how long to wait before trying again."""
        with self._lock:
            now = self._clock()
            if now < self._not_before:
                return self._not_before - now
            self._refill(now)
            if self._tokens >= tokens:
                self._tokens -= tokens
                self.granted += 1
                return 0.0
            return max((tokens - self._tokens) / self.rate, 1e-4)  # never 0: a float remainder must still move time

    def acquire(self, tokens: float = 1.0) -> float:
        """Blocks until ``tokens`` are taken; returns the time waited (seconds)."""
        waited = 0.0
        while True:
            wait = self.try_take(tokens)
            if wait <= 0:
                with self._lock:
                    self.waited += waited
                return waited
            self._sleep(wait)
            waited += wait

    def hold_off(self, seconds: float) -> None:
        """Face answered 429 with ``Retry-After: seconds``: no call from this process before then."""
        if seconds <= 0:
            return
        with self._lock:
            now = self._clock()
            self._refill(now)
            self._tokens = 0.0
            self._not_before = max(self._not_before, now + seconds)
            self.hold_offs += 1
            if now >= self._lowered_until:
                self.rate = max(self.ceiling * FLOOR, self.rate * DECREASE)
                self._lowered_until = self._not_before


class PacedCalls:
    """Wraps a Face port: each call takes a token first. Only the named methods cost a token."""

    COSTLY = frozenset({"create_person", "add_face", "get_person", "get_face", "delete_person", "detect",
                        "identify", "train", "training_status", "create_group"})

    def __init__(self, inner: object, bucket: TokenBucket) -> None:
        self._inner = inner
        self._bucket = bucket

    def __getattr__(self, name: str) -> object:
        attr = getattr(self._inner, name)
        if name not in self.COSTLY or not callable(attr):
            return attr
        bucket = self._bucket

        def paced(*args: object, **kwargs: object) -> object:
            bucket.acquire()
            return attr(*args, **kwargs)

        return paced
