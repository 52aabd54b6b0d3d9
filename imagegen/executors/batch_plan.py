"""The Batch API executor's pure rules: shards, names, poll waits, budgets, verdicts.

Values in, values out; no files, no network, no clock. The shell that applies them is
:mod:`imagegen.executors.batch`.

Limits (notes ``providers.md``, "Limits"; the rate-limits page as copied by third parties):
an input file is at most 2 GB, and a project runs at most 100 batches at once. The API
publishes no number of requests per batch (its real cap is the model's "enqueued tokens" quota,
shown per project): :data:`DEFAULT_LIMITS` cuts shards at 5,000 requests, an assumption that
keeps each shard's results file (5,000 images of 1-2 MB) within a few GB.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ..errors import BatchStop, FileGone, ProviderError
from ..model import JobState
from ..retry import RetryPolicy

#: The Files API's limit on one file (the input JSONL), bytes; a little below 2 GiB.
MAX_INPUT_BYTES = 2_000_000_000
#: Requests per shard (an assumption: module docstring).
MAX_REQUESTS = 5_000
#: The longest backoff between two polls, as a multiple of ``--batch-poll``, and in seconds.
POLL_GROWTH = 1.5
POLL_CAP_FACTOR = 10
POLL_CAP_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class ShardLimits:
    """How big one batch may be: requests, and bytes of its input file."""

    max_requests: int = MAX_REQUESTS
    max_bytes: int = MAX_INPUT_BYTES


DEFAULT_LIMITS = ShardLimits()


class Shards:
    """Cuts a stream of input lines into shards within :class:`ShardLimits`.

    :meth:`fits` says whether a line of ``size`` bytes (newline included) still fits the
    current shard; :meth:`add` counts it in. Raises ValueError for a line that could never fit.
    """

    def __init__(self, limits: ShardLimits) -> None:
        self.limits = limits
        self.requests = 0
        self.bytes = 0

    def fits(self, size: int) -> bool:
        if size > self.limits.max_bytes:
            raise ValueError(
                f"one request is {size:,} bytes, over the batch input limit of "
                f"{self.limits.max_bytes:,}"
            )
        return (
            self.requests < self.limits.max_requests and self.bytes + size <= self.limits.max_bytes
        )

    def add(self, size: int) -> None:
        self.requests += 1
        self.bytes += size

    def start(self) -> None:
        self.requests = 0
        self.bytes = 0


def display_name(session_id: str, shard: int) -> str:
    """The batch's display name: how a resumed session finds a batch whose create answer it
    never journaled (``imagegen-SESSION-shard-007``)."""
    return f"imagegen-{session_id}-shard-{shard:03d}"


def poll_waits(base: float) -> Iterator[float]:
    """Seconds between polls: ``base``, then 1.5x longer each time, up to 10 x ``base`` or
    10 minutes, whichever is shorter (never shorter than ``base``)."""
    cap = max(base, min(base * POLL_CAP_FACTOR, POLL_CAP_SECONDS))
    wait = base
    while True:
        yield wait
        wait = min(cap, wait * POLL_GROWTH)


@dataclass(frozen=True, slots=True)
class Affordable:
    """Which of the jobs offered to a batch go in it (indices, in order), which stay pending
    because their cost group reached its cap, those groups, and whether the run's budget cut
    the list short (every job from the first that did not fit is in neither list)."""

    sent: tuple[int, ...]
    capped: tuple[int, ...]
    groups: frozenset[str]
    budget_cut: bool


def affordable(
    holds: Sequence[tuple[float, str | None, float]],
    room: float | None,
    group_rooms: Mapping[str, float],
) -> Affordable:
    """The jobs that fit, in order, under the run's budget and their cost groups' caps.

    ``holds[i]`` is job i's USD reservation under the budget, its cost group, and its
    reservation under that group's cap; ``room`` is the budget's room (None: no budget) and
    ``group_rooms`` each capped group's (a group not in it has no cap). A group whose next job
    does not fit stops there (its later jobs are capped too, the other groups go on), as the
    online pool's groups do (:mod:`.budget`); the first job past the budget ends the list.
    """
    left = dict(group_rooms)
    stopped: set[str] = set()
    sent: list[int] = []
    capped: list[int] = []
    for n, (held, group, group_held) in enumerate(holds):
        ceiling = group if group is not None and group in left else None
        if ceiling is not None and (ceiling in stopped or group_held > left[ceiling] + 1e-9):
            stopped.add(ceiling)
            capped.append(n)
            continue
        if room is not None:
            if held > room + 1e-9:
                return Affordable(tuple(sent), tuple(capped), frozenset(stopped), True)
            room -= held
        if ceiling is not None:
            left[ceiling] -= group_held
        sent.append(n)
    return Affordable(tuple(sent), tuple(capped), frozenset(stopped), False)


Verdict = Literal["pending", "failed", "stop"]


def verdict(policy: RetryPolicy, state: JobState, error: ProviderError) -> Verdict:
    """What a failed result does to its job, by the online retry policy: back to ``pending``
    while the policy would try it again (a retryable kind with attempts of that kind left,
    under ``max_attempts``), ``failed`` otherwise; ``stop`` for a :class:`BatchStop` (the job
    returns to pending and the run stops). A :class:`FileGone` (a reference expired while the
    batch waited) is pending while attempts are left: it is the upload's fault, not the job's.

    ``state`` is the job with this attempt already counted in ``attempts``; its ``history``
    does not hold this failure yet.
    """
    if isinstance(error, BatchStop):
        return "stop"
    if state.attempts >= policy.max_attempts:
        return "failed"
    if isinstance(error, FileGone):
        return "pending"
    if not error.retryable:
        return "failed"
    failures = 1 + sum(1 for a in state.history if a.outcome == error.kind)
    return "pending" if failures < policy.attempts_for(error) else "failed"


def iso_seconds(when: float) -> str:
    """Unix seconds as the journal's local ISO time ("2026-07-01T02:00:00")."""
    return datetime.fromtimestamp(when).isoformat(timespec="seconds")


def seconds_of(iso: str | None) -> float | None:
    """The journal's local ISO time as Unix seconds (None if absent or unreadable)."""
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None
