"""A run's tally of one episode, folded one chapter outcome at a time. Pure.

Both :class:`~.result.ImageGenResult` and the provenance file are built from it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .manifest import EntryStatus, ImageEntry
from .prompts import TextUsage


@dataclass(frozen=True, slots=True)
class RunTally:
    """What this run did so far, folded one outcome at a time. Costs in USD."""

    generated: int = 0
    template: int = 0
    failed: int = 0
    rejected: int = 0
    stopped: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def add_entry(self, entry: ImageEntry) -> RunTally:
        """Count one chapter's outcome and its image cost."""
        if entry.status is EntryStatus.REJECTED:
            counts = {"rejected": self.rejected + 1}
        elif entry.status is EntryStatus.FAILED:
            counts = {"failed": self.failed + 1}
        elif entry.generation_method == "template":
            counts = {"template": self.template + 1}
        else:
            counts = {"generated": self.generated + 1}
        return replace(self, cost_usd=self.cost_usd + entry.cost_usd, **counts)

    def add_text(self, usage: TextUsage) -> RunTally:
        """Count one text-model call (a prompt written, not read from the cache)."""
        return replace(
            self,
            input_tokens=self.input_tokens + usage.input_tokens,
            output_tokens=self.output_tokens + usage.output_tokens,
            cost_usd=self.cost_usd + usage.cost_usd,
        )

    def add_stopped(self, count: int) -> RunTally:
        """Chapters planned but never started because the episode hit its cost cap."""
        return replace(self, stopped=self.stopped + count)
