"""One episode's spending cap in a run (``max_episode_cost_usd``, default $10). Pure.

Seed 002 section 9.4: before each image, if what the episode has spent plus the next image's
cost would pass the cap, the episode stops with status ``COST_LIMIT``; other episodes go on.
Reaching the cap exactly is allowed (the seed tests ``>``). Text-model calls that write prompts
count too (seed 002 section 5.2 adds their cost to the total).

A run that makes an episode's images concurrently reserves each image's estimate before it
starts and settles the real cost after, as :class:`imagegen.budget.Budget` does for a whole run,
so images in flight together cannot pass the cap. Values never change: each step returns a new
cap, which the caller keeps.

``spent_usd`` starts at 0 for each run: the cap bounds what one run may spend on an episode, so
an episode regenerated over weeks is not locked out. A caller that wants the seed's lifetime
total (all stages, all runs) passes what was spent before as ``spent_usd``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .settings import DEFAULT_MAX_EPISODE_COST_USD

_EPSILON = 1e-9  # float sums of prices must not trip the cap by a rounding error


@dataclass(frozen=True, slots=True)
class EpisodeCostCap:
    """``limit_usd`` for one episode; ``spent_usd`` settled; ``reserved_usd`` in flight."""

    limit_usd: float = DEFAULT_MAX_EPISODE_COST_USD
    spent_usd: float = 0.0
    reserved_usd: float = 0.0

    @property
    def remaining_usd(self) -> float:
        return max(self.limit_usd - self.spent_usd - self.reserved_usd, 0.0)

    def fits(self, estimate_usd: float) -> bool:
        """Whether an image (or call) expected to cost ``estimate_usd`` may start."""
        return self.spent_usd + self.reserved_usd + estimate_usd <= self.limit_usd + _EPSILON

    def reserve(self, estimate_usd: float) -> EpisodeCostCap:
        """The cap holding ``estimate_usd`` for a call about to start.

        Raises ValueError if it does not fit: ask :meth:`fits` first, and stop the episode
        (``COST_LIMIT``) when it says no.
        """
        if not self.fits(estimate_usd):
            raise ValueError(
                f"${estimate_usd:.4f} does not fit: ${self.remaining_usd:.4f} left of "
                f"${self.limit_usd:.2f}"
            )
        return replace(self, reserved_usd=self.reserved_usd + estimate_usd)

    def settle(self, reserved_usd: float, cost_usd: float) -> EpisodeCostCap:
        """Release a reservation and book the real cost (0 for a call that was not billed)."""
        return replace(
            self,
            reserved_usd=max(self.reserved_usd - reserved_usd, 0.0),
            spent_usd=self.spent_usd + cost_usd,
        )

    def charge(self, cost_usd: float) -> EpisodeCostCap:
        """Book a cost that had no reservation (a prompt written by the text model)."""
        return self.settle(0.0, cost_usd)
