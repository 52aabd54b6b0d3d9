"""The retry policy: which failures are tried again, how often, and after how long.

Seed 003, "Error Handling", as refined by issue 2:

=========================  ===========================================  ===================
failure                    wait before the next attempt                  attempts (in all)
=========================  ===========================================  ===================
429 rate limited           the server's ``retryDelay``, else 30 s;       6
                           the whole pool pauses too
408 / 5xx / dropped        15 s                                         3
timeout                    5, 15, 30 s                                  4
400, safety, no image      none: the job fails at once                  1
403, bad key, daily quota  none: the batch stops                        1
=========================  ===========================================  ===================

A circuit breaker: ``breaker_threshold`` server errors or timeouts in a row, across all jobs,
pause the whole pool for ``breaker_pause`` seconds instead of letting every worker hammer a
struggling service on its own.

Every job is also bounded in time (``max_elapsed``) and attempts (``max_attempts``), and each
wait gets up to ``jitter`` x wait of random extra so that workers do not retry in lockstep.
tenacity runs the loop; the clock and the sleep are injected.
"""

from __future__ import annotations

import random
import time
import tomllib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from .errors import AttemptTimeout, InputError, ProviderError, RateLimited, ServerError

# One generator for every job's jitter: seeding a new Random per job reads os.urandom each time.
_JITTER = random.Random()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Waits in seconds; attempt counts include the first attempt."""

    rate_limit_wait: float = 30.0
    rate_limit_attempts: int = 6
    server_error_wait: float = 15.0
    server_error_attempts: int = 3
    timeout_waits: tuple[float, ...] = (5.0, 15.0, 30.0)
    max_attempts: int = 8
    max_elapsed: float = 900.0
    jitter: float = 0.1
    breaker_threshold: int = 5
    breaker_pause: float = 60.0

    def attempts_for(self, error: ProviderError) -> int:
        """How many attempts in all a job may spend on failures of this kind."""
        if isinstance(error, RateLimited):
            return self.rate_limit_attempts
        if isinstance(error, ServerError):
            return self.server_error_attempts
        if isinstance(error, AttemptTimeout):
            return len(self.timeout_waits) + 1
        return 1

    def wait_for(self, error: ProviderError, failures_of_kind: int) -> float:
        """Seconds to wait after the ``failures_of_kind``-th failure of this kind (1-based)."""
        if isinstance(error, RateLimited):
            return error.retry_after if error.retry_after is not None else self.rate_limit_wait
        if isinstance(error, AttemptTimeout):
            return self.timeout_waits[min(failures_of_kind, len(self.timeout_waits)) - 1]
        if error.retry_after is not None:
            return error.retry_after
        return self.server_error_wait


def load_policy(path: Path) -> RetryPolicy:
    """Read a ``[retry]`` table of :class:`RetryPolicy` fields from a TOML file.

    Raises InputError naming the file and the unknown or ill-typed key.
    """
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("retry", {})
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the retry policy ({exc})") from exc
    known = {f.name: f for f in fields(RetryPolicy)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            raise InputError(f"{path}: unknown [retry] key {key!r}; use one of {', '.join(known)}")
        if key == "timeout_waits":
            value = tuple(float(v) for v in value)
        elif not isinstance(value, int | float) or value < 0:
            raise InputError(f"{path}: [retry] {key} must be a number >= 0, not {value!r}")
        values[key] = value
    return replace(RetryPolicy(), **values)


def retrying(
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], Awaitable[None]],
    clock: Callable[[], float] = time.monotonic,
    before_sleep: Callable[[ProviderError, float], Awaitable[None]] | None = None,
    rng: random.Random | None = None,
    started: float | None = None,
) -> AsyncRetrying:
    """A tenacity controller for one job's attempts under ``policy``.

    Retries only retryable :class:`ProviderError`; re-raises the last error when attempts or
    time run out. ``before_sleep(error, wait)`` is awaited before each wait (to journal it).
    ``started`` is when the job's first attempt began on ``clock`` (default: now), the start
    of ``max_elapsed``.
    """
    if started is None:
        started = clock()
    per_kind: Counter[str] = Counter()
    rng = rng or _JITTER
    waits: dict[int, float] = {}

    def _error(state: RetryCallState) -> ProviderError:
        assert state.outcome is not None
        error = state.outcome.exception()
        assert isinstance(error, ProviderError)
        return error

    # tenacity computes the wait before it asks whether to stop, so the wait is decided first
    # and the stop rule reads it.
    def wait(state: RetryCallState) -> float:
        error = _error(state)
        per_kind[error.kind] += 1
        delay = policy.wait_for(error, per_kind[error.kind])
        waits[state.attempt_number] = delay + delay * policy.jitter * rng.random()
        return waits[state.attempt_number]

    def stop(state: RetryCallState) -> bool:
        error = _error(state)
        return (
            per_kind[error.kind] >= policy.attempts_for(error)
            or state.attempt_number >= policy.max_attempts
            or clock() + waits[state.attempt_number] - started > policy.max_elapsed
        )

    async def _before_sleep(state: RetryCallState) -> None:
        if before_sleep is not None:
            await before_sleep(_error(state), waits[state.attempt_number])

    return AsyncRetrying(
        retry=retry_if_exception(lambda e: isinstance(e, ProviderError) and e.retryable),
        stop=stop,
        wait=wait,
        sleep=sleep,
        before_sleep=_before_sleep,
        reraise=True,
    )
