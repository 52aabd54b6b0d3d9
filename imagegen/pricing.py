"""What a job is expected to cost before it runs, at its provider's published prices (USD).

One rule for every place that shows a price ahead of the run: the dry run, the live display's
and ``--status``'s "to go", the budget's preview. A job makes one call per variant it has not
made yet; through the Batch API (``--batch``) a job of one image costs its provider's batch
price, and a job of several variants, or of a provider without a Batch API, runs online.
"""

from __future__ import annotations

from . import providers
from .model import JobState


def calls_left(js: JobState) -> int:
    """The calls a job still has to make: one per variant not made yet."""
    return max(0, js.job.variants - len(js.variant_outputs))


def call_price(js: JobState) -> float:
    """One call's price at the job's own provider's published prices (USD)."""
    j = js.job
    return providers.get(j.provider).estimate(j.model, j.quality, j.aspect, len(j.references))


def price(js: JobState) -> float:
    """The job's price online (USD): one call per variant it still has to make."""
    return call_price(js) * calls_left(js)


def batch_price(js: JobState) -> float | None:
    """The job's price with ``--batch``: one request at Batch API prices when a batch takes
    it (one image, a provider with a Batch API), else None (it runs online)."""
    j = js.job
    estimate = providers.get(j.provider).batch_estimate
    if estimate is None or j.variants > 1:
        return None
    return estimate(j.model, j.quality, j.aspect, len(j.references)) * calls_left(js)


def run_price(js: JobState, batch: bool) -> float:
    """What the job is expected to cost in this run: at batch prices where ``batch`` sends it."""
    through_batch = batch_price(js) if batch else None
    return price(js) if through_batch is None else through_batch
