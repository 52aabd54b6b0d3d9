"""A spending ceiling for one run (``--max-cost USD``), safe under concurrent calls.

Each call reserves its worst expected cost before it starts and settles the real cost after, so
the calls in flight together can never take the run past the ceiling (issue 6, "Cost").
"""

from __future__ import annotations

from dataclasses import dataclass

from . import pricing

# Thinking tokens are unknown before the call; 0.01 USD covers ~830 of them at $12 / 1M.
THINKING_ALLOWANCE_USD = 0.01


def reservation(model: str, quality: str, references: int) -> float:
    """USD held for one call: the published image and input-image prices plus the allowance."""
    return pricing.estimate(model, quality, references) + THINKING_ALLOWANCE_USD


@dataclass
class Budget:
    """``limit`` USD for this run; ``spent`` is settled, ``reserved`` is held by calls in flight."""

    limit: float
    spent: float = 0.0
    reserved: float = 0.0

    def reserve(self, amount: float) -> bool:
        """Hold ``amount`` if it fits under the limit with everything else; False if not."""
        if self.spent + self.reserved + amount > self.limit + 1e-9:
            return False
        self.reserved += amount
        return True

    def settle(self, reserved: float, cost: float) -> None:
        """Release a reservation and book the real cost (0 for a call that was not billed)."""
        self.reserved -= reserved
        self.spent += cost
