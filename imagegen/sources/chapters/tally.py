"""A session's tally of one episode, folded from its chapter jobs. Pure.

Both :class:`~.result.ImageGenResult` and the provenance file are built from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ...model import RUNNABLE, JobState
from .config import TextSpend
from .jobs import TEMPLATE_METHOD


@dataclass(frozen=True, slots=True)
class RunTally:
    """What a session did to an episode. ``generated`` and ``template`` images were made,
    ``failed`` and ``rejected`` chapters got none, ``stopped`` were never finished (a cost cap,
    the run's budget, Ctrl-C), ``skipped`` were left alone. Tokens are the text model's
    (thinking in ``output_tokens``); ``cost_usd`` is images and text, in USD."""

    generated: int = 0
    template: int = 0
    failed: int = 0
    rejected: int = 0
    stopped: int = 0
    skipped: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    @classmethod
    def of(cls, jobs: Iterable[JobState], text: TextSpend) -> RunTally:
        """Fold an episode's jobs (as the session holds them) and what planning spent."""
        counts = dict.fromkeys(("generated", "template", "failed", "rejected", "stopped"), 0)
        skipped = 0
        cost = text.cost_usd
        for js in jobs:
            cost += js.cost_usd or 0.0
            if js.status == "completed":
                method = js.job.label("generation_method")
                counts["template" if method == TEMPLATE_METHOD else "generated"] += 1
            elif js.status == "failed":
                counts["rejected" if js.error_kind == "no_image" else "failed"] += 1
            elif js.status in RUNNABLE:
                counts["stopped"] += 1
            else:
                skipped += 1
        return cls(
            **counts,
            skipped=skipped,
            input_tokens=text.input_tokens,
            output_tokens=text.output_tokens,
            cost_usd=round(cost, 6),
        )
