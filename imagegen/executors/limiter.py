"""Start-rate limits shared by the whole worker pool, and the clock they run on.

Seed 003, "Rate Limits": at most ``concurrency`` calls in flight, at least ``min_interval``
seconds between request starts, at most ``rpm`` starts in any 60 s window. A pool-wide pause
(after a 429, or by the circuit breaker) holds every start until it ends.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Limits:
    """Pool limits: calls in flight, seconds between starts, starts per ``window`` seconds."""

    concurrency: int = 3
    min_interval: float = 1.0
    rpm: int = 60
    window: float = 60.0


class StartGate:
    """Grants request starts in FIFO order within :class:`Limits`; clock and sleep injected."""

    def __init__(
        self, limits: Limits, *, clock: Clock = time.monotonic, sleep: Sleep = anyio.sleep
    ):
        self.limits = limits
        self._clock = clock
        self._sleep = sleep
        self._lock = anyio.Lock()
        self._starts: deque[float] = deque()
        self._last: float | None = None
        self.paused_until = 0.0
        self.pause_reason: str | None = None
        self.slots = anyio.CapacityLimiter(limits.concurrency)

    def pause(self, seconds: float, reason: str) -> None:
        """Hold every start for ``seconds`` from now (extends, never shortens, a pause)."""
        until = self._clock() + seconds
        if until > self.paused_until:
            self.paused_until = until
            self.pause_reason = reason

    def now(self) -> float:
        """The gate's clock, in seconds."""
        return self._clock()

    def starts_within(self, seconds: float) -> int:
        """Request starts granted in the last ``seconds`` (the per-minute cap's window)."""
        now = self._clock()
        return sum(1 for t in self._starts if now - t <= seconds)

    def _next_allowed(self, now: float) -> float:
        t = self.paused_until
        if self._last is not None:
            t = max(t, self._last + self.limits.min_interval)
        while self._starts and self._starts[0] <= now - self.limits.window:
            self._starts.popleft()
        if len(self._starts) >= self.limits.rpm:
            t = max(t, self._starts[0] + self.limits.window)
        return t

    async def wait_turn(self) -> float:
        """Wait until a start is allowed and record it; returns the start time (clock seconds).

        Call while holding one of :attr:`slots`, so that the call it starts counts in flight.
        """
        async with self._lock:
            while True:
                now = self._clock()
                allowed = self._next_allowed(now)
                if allowed <= now:
                    break
                await self._sleep(allowed - now)
            self._starts.append(now)
            self._last = now
            return now
