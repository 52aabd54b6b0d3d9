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
struggling service on its own; ``breaker_trips_to_stop`` trips with no success in between stop
the batch (a service failing every call would otherwise be paid for in time for hours).

Every job is also bounded in time (``max_elapsed``) and attempts (``max_attempts``), and each
wait gets up to ``jitter`` x wait of random extra so that workers do not retry in lockstep.

This module is the one place these rules live: :func:`call_with_retries` runs one job's
attempts (the first bare, the rest under tenacity), :meth:`RetryPolicy.pool_pause` says when
the whole pool waits, and :class:`Breaker` counts failures across jobs. The clock and the sleep
are injected.
"""

from __future__ import annotations

import random
import time
import tomllib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base

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
    breaker_trips_to_stop: int = 3

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

    def pool_pause(self, error: ProviderError) -> tuple[float, str] | None:
        """(seconds, reason) the whole pool waits after ``error``, or None.

        A 429 means the project's quota is spent for now: every worker would hit it, so the
        pool waits the server's ``retryDelay`` (else ``rate_limit_wait``).
        """
        if isinstance(error, RateLimited):
            wait = error.retry_after if error.retry_after is not None else self.rate_limit_wait
            return wait, "rate limited (429)"
        return None


class Breaker:
    """Server errors and timeouts in a row across all jobs (seed 003's "API Handling").

    :meth:`record` returns "pause" when ``breaker_threshold`` failures in a row trip it (the
    count starts again), "stop" when it has tripped ``breaker_trips_to_stop`` times with no
    success in between, else "ok". A success resets both counts.
    """

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.failures = 0
        self.trips = 0

    def success(self) -> None:
        self.failures = 0
        self.trips = 0

    def record(self, error: ProviderError) -> Literal["ok", "pause", "stop"]:
        if not isinstance(error, ServerError | AttemptTimeout):
            return "ok"
        self.failures += 1
        if self.failures < self.policy.breaker_threshold:
            return "ok"
        self.failures = 0
        self.trips += 1
        if self.trips >= self.policy.breaker_trips_to_stop:
            return "stop"
        return "pause"


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
    of ``max_elapsed``. tenacity's own ``stop_after_attempt`` bounds the attempts; the
    per-kind counts and the elapsed time (on the injected clock, which tenacity's
    ``stop_after_delay`` cannot use) are ours.
    """
    begun = clock() if started is None else started
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

    class stop_per_kind_or_time(stop_base):
        """Stop when this kind of failure has used its attempts, or the next wait would take
        the job past ``max_elapsed`` on the injected clock."""

        def __call__(self, state: RetryCallState) -> bool:
            error = _error(state)
            return (
                per_kind[error.kind] >= policy.attempts_for(error)
                or clock() + waits[state.attempt_number] - begun > policy.max_elapsed
            )

    async def _before_sleep(state: RetryCallState) -> None:
        if before_sleep is not None:
            await before_sleep(_error(state), waits[state.attempt_number])

    return AsyncRetrying(
        retry=retry_if_exception(lambda e: isinstance(e, ProviderError) and e.retryable),
        stop=stop_after_attempt(policy.max_attempts) | stop_per_kind_or_time(),
        wait=wait,
        sleep=sleep,
        before_sleep=_before_sleep,
        reraise=True,
    )


T = TypeVar("T")


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], Awaitable[None]],
    clock: Callable[[], float] = time.monotonic,
    before_sleep: Callable[[ProviderError, float], Awaitable[None]] | None = None,
) -> T:
    """Run ``attempt`` until it succeeds, fails for good, or the policy gives up.

    The first attempt runs bare: most jobs succeed at once, and tenacity's per-attempt
    bookkeeping costs more CPU than the rest of the runner's work on a job. A retryable first
    failure is replayed into tenacity as attempt 1, so waits, counts, journal entries and
    ``max_elapsed`` are as if tenacity had run from the start. Raises the last ProviderError
    (or anything else ``attempt`` raises) unchanged.
    """
    started = clock()
    try:
        return await attempt()
    except ProviderError as first:
        if not first.retryable:
            raise
        replay: ProviderError | None = first
    controller = retrying(
        policy, sleep=sleep, clock=clock, before_sleep=before_sleep, started=started
    )
    async for trial in controller:
        with trial:
            if replay is not None:
                error, replay = replay, None
                raise error
            result = await attempt()
    return result
