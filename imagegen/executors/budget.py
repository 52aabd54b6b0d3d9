"""Spending ceilings, safe under concurrent calls: one for a run (``--max-cost USD``), and
one per cost group within a session (a job's ``cost_group``).

Each call reserves what it may cost before it starts and settles the real cost after, so the
calls in flight together cannot take the run past the ceiling. What a call may cost is its
published price plus its thinking tokens, which are only known after it: the reservation is
the price plus the larger of :data:`THINKING_ALLOWANCE_USD` and the dearest thinking seen so
far in the session (this run or an earlier one). Until one call has reported its usage, one
call runs at a time, so the first surprise is met alone.

The guarantee (README, "Contact sheet and cost"): the run never starts a call whose
reservation does not fit under the ceiling; it can only pass the ceiling if a call uses more
thinking than any call before it, and then by at most that excess for each call in flight.

Cost groups. A source may put its jobs in groups (``Job.cost_group``) and give each group a
ceiling in the session config: ``cost_caps: {group: USD}``, with ``planning_costs: {group:
USD}`` for what planning already spent for the group (text written before the session). A
group's ceiling covers the whole session (every run of it: its jobs' recorded costs count),
on top of the run's ``--max-cost``. When a group's next call does not fit (after waiting for
its calls in flight to settle), the group stops: that job and every later one of the group
stay pending with ``error_kind`` "cost_cap", and the other groups go on (seed 002 section 9.4,
"other episodes continue"). :func:`group_caps` builds them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

#: USD held for thinking tokens before any call has reported them: ~830 tokens at $12 / 1M,
#: several times what Nano Banana Pro reports for an image (gemini-api notes, "Prices").
THINKING_ALLOWANCE_USD = 0.01


@dataclass
class Budget:
    """``limit`` USD for this run. ``spent`` is settled, ``reserved`` held by calls in flight,
    ``thinking_seen`` the dearest thinking (USD) of one call so far."""

    limit: float
    spent: float = 0.0
    reserved: float = 0.0
    thinking_seen: float = 0.0
    settled_calls: int = 0
    in_flight: int = 0

    def reservation(self, price: float) -> float:
        """USD to hold for a call whose published price is ``price``."""
        return price + max(THINKING_ALLOWANCE_USD, self.thinking_seen)

    def reserve(self, amount: float) -> bool:
        """Hold ``amount`` if it fits under the limit with everything else; False if not.

        Before any call has settled, a second concurrent call is refused too (False); the
        caller waits for the first instead of stopping (:meth:`must_wait`).
        """
        if self.spent + self.reserved + amount > self.limit + 1e-9:
            return False
        self.reserved += amount
        self.in_flight += 1
        return True

    def must_wait(self) -> bool:
        """True while a first call is in flight and none has settled: hold the next start."""
        return self.settled_calls == 0 and self.in_flight > 0

    def settle(self, reserved: float, cost: float, price: float | None = None) -> None:
        """Release a reservation and book the real cost (0 for a call that was not billed);
        with ``price`` (the call's published price), learn its thinking cost."""
        self.reserved -= reserved
        self.in_flight -= 1
        self.spent += cost
        if price is not None:
            self.settled_calls += 1
            self.thinking_seen = max(self.thinking_seen, cost - price)


@dataclass
class GroupCaps:
    """The cost groups' ceilings of one run: a :class:`Budget` per capped group (its ``spent``
    is what the session spent on the group so far), and the groups already stopped."""

    budgets: dict[str, Budget] = field(default_factory=dict)
    stopped: set[str] = field(default_factory=set)

    def get(self, group: str | None) -> Budget | None:
        """The ceiling of ``group``; None when the group (or the job) has none."""
        return self.budgets.get(group) if group is not None else None


def group_caps(
    config: Mapping[str, object],
    spent: Iterable[tuple[str | None, float | None]],
    thinking_seen: float = 0.0,
) -> GroupCaps:
    """The ceilings named by ``config["cost_caps"]``, each knowing what its group has spent:
    ``config["planning_costs"]`` plus the ``(cost_group, cost_usd)`` of every job so far.
    ``thinking_seen`` is the dearest thinking (USD) any call of the session used."""
    caps = config.get("cost_caps")
    if not isinstance(caps, Mapping) or not caps:
        return GroupCaps()
    planning = config.get("planning_costs")
    before = planning if isinstance(planning, Mapping) else {}
    budgets = {
        str(group): Budget(
            float(limit),  # JSON numbers, written by a source
            spent=float(before.get(group) or 0.0),
            thinking_seen=thinking_seen,
        )
        for group, limit in caps.items()
    }
    for group, cost in spent:
        if group is not None and group in budgets and cost:
            budgets[group].spent += cost
    return GroupCaps(budgets)
