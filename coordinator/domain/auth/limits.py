"""Rate limits, per key (a client address, a worker name, a user), bounded in memory.

- `RateLimiter`: a token bucket per key (`rate` per second, bursts of `burst`): control calls,
  webhooks.
- `FailureLimiter`: after `limit` failures within `window` seconds a key is blocked until the
  window has passed; `failed()` says whether to log (once per key per window), so an attacker
  guessing secrets fills neither the log nor memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

MAX_KEYS = 10_000


class RateLimiter:
    def __init__(self, rate: float, burst: float, now: Callable[[], float], max_keys: int = MAX_KEYS) -> None:
        self.rate = rate
        self.burst = burst
        self.now = now
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, key: str) -> bool:
        now = self.now()
        tokens, at = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        ok = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if ok else tokens, now)
        while len(self._buckets) > self.max_keys:  # forget the least recently seen
            self._buckets.popitem(last=False)
        return ok


class FailureLimiter:
    def __init__(self, limit: int, window: float, now: Callable[[], float], max_keys: int = MAX_KEYS) -> None:
        self.limit = limit
        self.window = window
        self.now = now
        self.max_keys = max_keys
        # key -> (window start, failures in it, logged in it)
        self._seen: OrderedDict[str, tuple[float, int, bool]] = OrderedDict()

    def _current(self, key: str) -> tuple[float, int, bool]:
        now = self.now()
        start, count, logged = self._seen.get(key, (now, 0, False))
        if now - start >= self.window:
            return now, 0, False
        return start, count, logged

    def blocked(self, key: str) -> bool:
        return self._current(key)[1] >= self.limit

    def failed(self, key: str) -> bool:
        """Count a failure; True when it should be logged (the first of its window)."""
        start, count, logged = self._current(key)
        self._seen.pop(key, None)
        self._seen[key] = (start, count + 1, True)
        while len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)
        return not logged

    def succeeded(self, key: str) -> None:
        self._seen.pop(key, None)
