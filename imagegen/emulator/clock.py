"""The emulator's wall clock: real by default, a hand-driven one for tests.

File expiry (48 h) and batch turnaround are measured on ``Emulator.clock``, a callable that
returns seconds since the Unix epoch. Tests pass a :class:`ManualClock` and move it with
:meth:`ManualClock.advance`, so a batch that "takes a day" or a file that "expires after two
days" costs no real time. Timestamps on the wire are RFC 3339 in UTC with a ``Z``, as the
Gemini API writes them (ai.google.dev/api batch-mode and files pages, "Timestamp format").
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

#: Any callable returning seconds since the Unix epoch, such as ``time.time``.
Clock = Callable[[], float]

# 2026-07-01T00:00:00Z: a fixed start keeps the timestamps in test output reproducible.
MANUAL_CLOCK_START = 1_782_864_000.0


class ManualClock:
    """A clock that moves only when told to. Thread-safe; call it to read the time (seconds)."""

    def __init__(self, start: float = MANUAL_CLOCK_START) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (not negative); returns the new time."""
        if seconds < 0:
            raise ValueError(f"a clock does not go back: advance({seconds})")
        with self._lock:
            self._now += seconds
            return self._now


def rfc3339(seconds: float) -> str:
    """``2026-07-01T00:00:00.000000Z`` for a Unix time in seconds (microseconds, UTC)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
