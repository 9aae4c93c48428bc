"""Reconnect delays: exponential with jitter, capped."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """`minimum`, doubling per failure up to `maximum`; each delay is jittered down by up to 25%
    so that many agents restarted together do not reconnect in lockstep."""

    def __init__(
        self, minimum: float = 1.0, maximum: float = 60.0, rng: Callable[[], float] = random.random
    ) -> None:
        self._minimum = minimum
        self._maximum = max(minimum, maximum)
        self._rng = rng
        self._next = minimum

    def reset(self) -> None:
        self._next = self._minimum

    def next_delay(self, cap: float | None = None) -> float:
        """The next delay, at most `cap` when given (the doubling goes on underneath)."""
        delay = self._next if cap is None else min(self._next, cap)
        self._next = min(self._next * 2, self._maximum)
        return delay * (1.0 - 0.25 * self._rng())
